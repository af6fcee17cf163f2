//! The ringback tone the async answer plays by default, generated at start-up so the gateway
//! needs no external media host: the North American ringback (440 Hz + 480 Hz, 2 s on, 4 s
//! off), one 6-second cycle, 8 kHz 16-bit mono PCM WAV; `<Play loop="0">` repeats it.

use bytes::Bytes;

const RATE: u32 = 8_000;
const ON_SECS: u32 = 2;
const CYCLE_SECS: u32 = 6;
/// Per tone, so the sum stays well inside i16.
const AMPLITUDE: f64 = 6_000.0;

/// The WAV file.
pub fn wav() -> Bytes {
    let samples = RATE * CYCLE_SECS;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    let two_pi = std::f64::consts::TAU;
    for i in 0..samples {
        let sample = if i < RATE * ON_SECS {
            let t = f64::from(i) / f64::from(RATE);
            AMPLITUDE * ((two_pi * 440.0 * t).sin() + (two_pi * 480.0 * t).sin())
        } else {
            0.0
        };
        // |sample| <= 12 000: the cast cannot saturate.
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&(sample.round() as i16).to_le_bytes());
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_a_six_second_pcm_wav() {
        let wav = super::wav();
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(wav.len(), 44 + 8_000 * 6 * 2);
        assert!(
            wav[44..44 + 100].iter().any(|b| *b != 0),
            "the tone starts at once"
        );
        assert!(
            wav[wav.len() - 100..].iter().all(|b| *b == 0),
            "then silence"
        );
    }
}
