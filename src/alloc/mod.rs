//! Allocation: which account of a pool serves a request. Sessions stick to their account (prompt
//! caches are per account); new sessions and requests without one go to the best-scoring
//! available account; budgets and caps are respected; idle sessions are rebalanced.

pub mod bind;
mod candidates;
pub mod pick;
pub mod rebalance;
pub mod score;
pub mod sessions;
pub mod shared;

#[cfg(test)]
mod props;
