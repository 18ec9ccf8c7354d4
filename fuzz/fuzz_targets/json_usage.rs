#![no_main]
//! json_usage: reading usage and model from a complete (non-streamed) JSON answer never panics
//! for any provider and any bytes; the meter, fed the body in any chunks (gzipped or not), gives
//! exactly the reading `Provider::json_usage` gives on the whole body and passes the bytes
//! untouched; and what the proxy computes next from a reading (total tokens for the access line,
//! the price) never panics, a priced cost being finite and not negative.
//!
//! Input: see `llm_sidecar_fuzz::Input`; the body is the answer. Flags: bit 0, the gzipped body
//! goes through the meter too.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm_sidecar::usage::price::{self, Price};
use llm_sidecar::usage::{Meter, Reading};
use llm_sidecar_fuzz::{gzip, Input, PROVIDERS};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let body = input.body;
    let gz = (input.flags & 1 != 0).then(|| gzip(body));
    let prices = [Price {
        model: "*".into(),
        input: 3.0,
        output: 15.0,
        cache_read: Some(0.3),
        cache_write: None,
        cache_write_1h: Some(6.0),
    }];
    // Each way: its chunks, and for a gzipped one the compressed bytes (metered through gunzip).
    let mut ways: Vec<(&str, Vec<&[u8]>, Option<&[u8]>)> =
        vec![("whole", vec![body], None), ("cut", input.chunks(true), None)];
    if let Some(gz) = &gz {
        ways.push(("gzip cut", input.split(gz, true), Some(gz)));
    }

    for kind in PROVIDERS {
        let p = kind.get();
        let mut direct = Reading::default();
        p.json_usage(body, &mut direct);

        // What src/proxy/finish.rs and the price table do with it.
        let _ = direct.usage.uncached_input();
        let _ = direct.usage.total_tokens();
        if let Some(cost) = price::cost(&prices, direct.model.as_deref(), &direct.usage) {
            if direct.usage.cost.is_none() {
                assert!(cost.is_finite() && cost >= 0.0, "{kind:?}: priced at {cost}");
            }
        }

        for (what, chunks, gzipped) in &ways {
            let mut m = Meter::new(p, false, false, 0);
            if gzipped.is_some() {
                m = m.gunzip();
            }
            let mut sent = Vec::new();
            for chunk in chunks {
                let mut b = Some(Bytes::copy_from_slice(chunk));
                m.feed(&mut b);
                sent.extend_from_slice(b.as_deref().unwrap_or_default());
            }
            assert!(sent == gzipped.unwrap_or(body), "{kind:?}: the meter changed the bytes ({what})");
            assert!(!m.too_large(), "{kind:?}: a fuzz input is not 8 MiB");
            let (reading, _) = m.finish();
            assert_eq!(reading.usage, direct.usage, "{kind:?} usage ({what})");
            assert_eq!(reading.model, direct.model, "{kind:?} model ({what})");
            assert_eq!(reading.complete, direct.complete, "{kind:?} complete ({what})");
            assert_eq!(reading.error, direct.error, "{kind:?} error ({what})");
        }
    }
});
