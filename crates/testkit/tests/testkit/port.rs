//! Reserved ports: nothing answers on them, yet a server that sets `SO_REUSEADDR` (as std's
//! and tokio's `TcpListener::bind` do) can listen on one while it is held.

use std::io::ErrorKind;

use switchboard_testkit::ReservedPort;

#[tokio::test]
async fn a_reserved_port_refuses_connections_and_a_server_can_listen_on_it() {
    let port = ReservedPort::new().unwrap();
    let addr = port.addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(port.nats_url(), format!("nats://127.0.0.1:{}", port.port()));
    let refused = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    // A socket without SO_REUSEADDR cannot take it.
    let plain = tokio::net::TcpSocket::new_v4().unwrap();
    assert_eq!(
        plain.bind(addr).unwrap_err().kind(),
        ErrorKind::AddrInUse,
        "only a server that sets SO_REUSEADDR may bind a reserved port"
    );

    let listener = std::net::TcpListener::bind(addr).unwrap();
    std::net::TcpStream::connect(addr).unwrap();
    drop(listener);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::net::TcpStream::connect(addr).await.unwrap();
    drop(listener);
    assert_eq!(
        std::net::TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}

#[test]
fn reserved_ports_are_distinct() {
    let ports = ReservedPort::many(8).unwrap();
    let mut numbers: Vec<u16> = ports.iter().map(ReservedPort::port).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 8);
}
