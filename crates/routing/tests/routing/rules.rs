//! One test per rule and edge case. Each cites the line of the spec (shared/seeds, "How
//! Inbound Call Routing Works") or of contract v1 that it proves.

use crate::fixture::*;
use switchboard_contracts::{FinalAction, FinalActionKind, Rule};

/// Spec: "If a phone number is assigned to a user, the inbound call will route to that user if
/// the lead is assigned to a user." / Step 1: "If the lead is assigned to a user, the call will
/// be forwarded to the User's Phone."
#[test]
fn assigned_user_with_phone_rings_the_user() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .company(Some(COMPANY))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert_eq!(d.target.as_ref().unwrap().user_id, Some(id("u1")));
    assert_eq!(
        chain(&d),
        vec![
            (USER_PHONE.into(), "assigned_user"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ],
        "fallbacks list the remaining targets in rule order"
    );
    assert!(explains(&d, "Lead c1 is assigned to user u1"));
}

/// Spec: "If no phone number is assigned to the user, even if the lead is assigned to the
/// user, it will forward to the forwarding number."
#[test]
fn assigned_user_without_phone_goes_to_forwarding_number() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .company(Some(COMPANY))
        .user("u1", None, true)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert_eq!(
        chain(&d),
        vec![
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone")
        ]
    );
    assert!(explains(&d, "who has no phone number"));
}

/// Spec: "If the lead is not assigned to a user, it will go to the forwarding number."
#[test]
fn unassigned_lead_goes_to_forwarding_number() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], None);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert_eq!(chain(&d), vec![(FORWARDING.into(), "forwarding_number")]);
    assert!(explains(&d, "Lead c1 is not assigned to a user"));
}

/// Spec: "If no forwarding number is set up, the call will route to the company number." /
/// Step 3: "If you did not set up a specific Call Forwarding Number and the lead is not
/// assigned to a specific user, the call will be forwarded to the Company Phone."
#[test]
fn no_forwarding_number_goes_to_company_phone() {
    let mut f = Fixture::new();
    f.company(Some(COMPANY)).contact("c1", &[CALLER], None);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::CompanyPhone);
    assert_eq!(chain(&d), vec![(COMPANY.into(), "company_phone")]);
    assert!(explains(&d, "has no forwarding number"));
}

/// Contract v1 rule 3: "the caller is unknown" → the forwarding number.
#[test]
fn unknown_caller_goes_to_forwarding_number() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &["+14158675311"], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(explains(&d, "is not a known lead"));
}

/// Contract v1 rule 3: "the caller is … withheld" → the forwarding number.
#[test]
fn withheld_caller_goes_to_forwarding_number() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING));
    for from in ["", "anonymous", "Restricted"] {
        let d = f.decide(&call_from(from));
        assert_eq!(d.rule, Rule::ForwardingNumber, "from {from:?}");
        assert!(explains(&d, "withheld their number"), "from {from:?}");
    }
}

/// Contract v1 rule 3: "the user … is inactive or unknown" → the forwarding number
/// (user.v1: "deactivated or deleted users are never routed to").
#[test]
fn inactive_or_unknown_user_goes_to_forwarding_number() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), false)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(chain(&d), vec![(FORWARDING.into(), "forwarding_number")]);
    assert!(explains(&d, "who is deactivated"));

    f.contact("c1", &[CALLER], Some("ghost"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(explains(&d, "user ghost, who is unknown"));
}

/// Contract v1 rule 5: "Otherwise → no_route with the final action: never a silent drop."
#[test]
fn nothing_set_up_is_no_route_with_the_default_final_action() {
    let f = Fixture::new();
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::NoRoute);
    assert_eq!(d.target, None);
    assert!(d.fallbacks.is_empty());
    assert_eq!(d.final_action, FinalAction::default());
    assert_eq!(d.final_action.kind, FinalActionKind::Voicemail);
    assert!(explains(&d, "No route"));
}

/// Contract v1: `final_action` is "configurable per tenant, with a default".
#[test]
fn tenant_final_action_is_used() {
    let mut f = Fixture::new();
    let action = FinalAction {
        kind: FinalActionKind::AnnounceHangup,
        message: "We are closed.".into(),
    };
    f.company_full(Some(COMPANY), None, Some(action.clone()));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::CompanyPhone);
    assert_eq!(
        d.final_action, action,
        "the final action rides along with a target too"
    );
}

/// Contract v1: "a dialed number that is not provisioned for the tenant … → no_route".
#[test]
fn unprovisioned_dialed_number_is_no_route() {
    let mut f = Fixture::new();
    f.company(Some(COMPANY));
    let mut call = call_from(CALLER);
    call.to = "+16502530001".into();
    let d = f.decide(&call);
    assert_eq!(d.rule, Rule::NoRoute);
    assert!(explains(&d, "is not provisioned for this tenant"));
}

/// Contract v1: "a dialed number that is … released → no_route with that reason".
#[test]
fn released_dialed_number_is_no_route() {
    let mut f = Fixture::new();
    f.company(Some(COMPANY))
        .number(DIALED, Some(FORWARDING), true);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::NoRoute);
    assert!(explains(&d, "has been released"));
}

/// Contract v1: an unusable dialed number cannot be looked up → no_route, explained.
#[test]
fn unparseable_dialed_number_is_no_route() {
    let mut f = Fixture::new();
    f.company(Some(COMPANY));
    let mut call = call_from(CALLER);
    call.to = "not-a-number".into();
    let d = f.decide(&call);
    assert_eq!(d.rule, Rule::NoRoute);
    assert!(explains(&d, "is not a usable phone number"));
}

/// Contract v1: "a target equal to the dialed number is skipped (a forwarding loop) and the
/// explanation says so".
#[test]
fn forwarding_to_the_dialed_number_is_skipped_as_a_loop() {
    let mut f = Fixture::new();
    f.forwarding(Some(DIALED)).company(Some(COMPANY));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(chain(&d), vec![(COMPANY.into(), "company_phone")]);
    assert!(explains(&d, "forwarding loop"));

    // Every target equal to the dialed number: nothing left, the final action runs.
    f.company(Some("(650) 253-0000"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::NoRoute);
}

/// Contract v1: "`fallbacks` lists the remaining distinct targets in rule order".
#[test]
fn repeated_numbers_appear_once_in_the_chain() {
    let mut f = Fixture::new();
    f.forwarding(Some(USER_PHONE))
        .company(Some(USER_PHONE))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(chain(&d), vec![(USER_PHONE.into(), "assigned_user")]);
    assert!(explains(&d, "already in the chain"));
}

/// Contract v1 step 1: "`contact_id` if given" takes precedence over the caller lookup.
#[test]
fn producer_contact_id_names_the_lead() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], None)
        .contact("c2", &["+14158675311"], Some("u1"));
    let mut call = call_from(CALLER);
    call.contact_id = Some(id("c2"));
    let d = f.decide(&call);
    assert_eq!(d.rule, Rule::AssignedUser);
    assert!(explains(&d, "Lead c2 was named by the producer"));
}

/// A named contact that is unknown or deleted falls back to the caller lookup, explained.
#[test]
fn unknown_or_deleted_contact_id_falls_back_to_caller_lookup() {
    let mut f = Fixture::new();
    f.user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"))
        .contact_full("c9", &[], Some("u1"), true);
    for named in ["nobody", "c9"] {
        let mut call = call_from(CALLER);
        call.contact_id = Some(id(named));
        let d = f.decide(&call);
        assert_eq!(d.rule, Rule::AssignedUser, "named {named}");
        assert!(
            explains(&d, "looking the caller up instead"),
            "named {named}"
        );
        assert!(explains(&d, "is lead c1"), "named {named}");
    }
}

/// Contract v1 step 1: "Several matches: choose deterministically and say which in the
/// explanation." A lead whose user can take the call wins; ties go to the smallest id.
#[test]
fn several_matching_leads_are_chosen_deterministically() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), true)
        .user("u2", None, true)
        .contact("a", &[CALLER], Some("u2"))
        .contact("m", &[CALLER], Some("u1"))
        .contact("z", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert!(
        explains(&d, "matches 3 leads (m, z, a); chose m"),
        "{:?}",
        d.explanation()
    );

    // Nobody reachable: the smallest contact id, and the forwarding number.
    f.user("u1", Some(USER_PHONE), false);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(explains(&d, "chose a"), "{:?}", d.explanation());
}

/// Contract v1: numbers are "normalized to E.164 … region from tenant settings, default US".
#[test]
fn national_format_numbers_are_normalized_in_the_tenant_region() {
    let mut f = Fixture::new();
    f.user("u1", Some("(206) 456-1234"), true)
        .contact("c1", &["415.867.5310"], Some("u1"));
    let d = f.decide(&call_from("+1 (415) 867-5310"));
    assert_eq!(chain(&d), vec![(USER_PHONE.into(), "assigned_user")]);

    // A British tenant: national numbers are read as GB, and changing the region re-reads
    // the numbers already stored.
    let mut gb = Fixture::new();
    gb.user("u1", Some(USER_PHONE), true)
        .contact("c1", &["020 7946 0018"], Some("u1"));
    assert_eq!(gb.decide(&call_from("+442079460018")).rule, Rule::NoRoute);
    gb.company_full(None, Some("GB"), None);
    let d = gb.decide(&call_from("+442079460018"));
    assert_eq!(d.rule, Rule::AssignedUser, "{:?}", d.explanation());
}

/// Contact.v1 `deleted`: deleted contacts are never matched.
#[test]
fn deleted_contacts_are_never_matched() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"))
        .contact_full("c1", &[CALLER], Some("u1"), true);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(explains(&d, "is not a known lead"));
}

/// A user phone that is not a real number is skipped with the reason, not dialed.
#[test]
fn unusable_user_phone_is_skipped_and_explained() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .user("u1", Some("12"), true)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    assert_eq!(chain(&d), vec![(FORWARDING.into(), "forwarding_number")]);
    assert!(explains(&d, "is not a usable phone number"));
}

/// The explanation never spells out a full phone number (it may reach logs and screens).
#[test]
fn explanations_mask_phone_numbers() {
    let mut f = Fixture::new();
    f.forwarding(Some(FORWARDING))
        .company(Some(COMPANY))
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"));
    let d = f.decide(&call_from(CALLER));
    for number in [DIALED, CALLER, USER_PHONE, FORWARDING, COMPANY] {
        assert!(
            !d.explanation().iter().any(|l| l.contains(number)),
            "{number} in {:?}",
            d.explanation()
        );
    }
}

/// The decision becomes a `call.route` with the caller-supplied sequence and time.
#[test]
fn decision_becomes_a_route_event() {
    use switchboard_contracts::EventData;
    let mut f = Fixture::new();
    f.company(Some(COMPANY));
    let call = call_from(CALLER);
    let at = time::macros::datetime!(2026-11-22 09:00:01 UTC);
    let route = f.decide(&call).into_route(&call, 42, at);
    assert_eq!(route.settings_seq, 42);
    assert_eq!(route.decided_at, at);
    assert_eq!(route.call_id, call.call_id);
    route.validate().unwrap();
    assert_eq!(route.event_id(), "acme:CA0001:route");
}
