//! Counts read leniently, as the `Value` getters read them (`as_u64`): a member that is not a
//! non-negative integer reads as absent, so one odd field never costs a whole answer.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// For `#[serde(default, deserialize_with = "count")]` on an `Option<u64>` member. A number
/// builds no allocation on its way through `Value`; only an odd member (a string, an object)
/// does.
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(d)?.as_u64())
}
