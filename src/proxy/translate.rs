//! The seam between the client's API dialect and the target's. A pass-through route (one with a
//! `pool`) needs none: the client speaks its pool's API, its body goes upstream as admitted and
//! the answer comes back as sent. The front doors (`api: openai | anthropic`) fill this stage in:
//! between admission and the upstream the client's request becomes the target's (per attempt,
//! since a retry may move to a target of another provider), and on the way back the target's
//! answer, stream or error becomes the client's, while metering stays on the upstream's bytes.

/// The translation a request needs (none for a pass-through route).
#[derive(Default)]
pub struct Translation {
    _private: (),
}

#[allow(dead_code)] // the front doors fill it in
impl Translation {
    /// Whether the answer is passed back as the upstream sent it.
    pub fn is_identity(&self) -> bool {
        true
    }
}
