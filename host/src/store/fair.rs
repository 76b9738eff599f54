//! Fairness between the keys of a queue, shared by every backend: each
//! claim reads the head of every key with waiting attempts (a lane, in the
//! key's own order) and interleaves them — strictly by priority, then the
//! lane that has been served least for its weight. Each key's standing
//! (`served`, in units of 1/weight) is kept in the store, relative to the
//! least-served key with waiting attempts, so a key that goes idle and
//! returns gets no burst of catching up.

use std::collections::VecDeque;

/// One key's waiting attempts (priority first), and its standing.
pub struct Lane<T> {
    pub key: String,
    /// The weight of the key's head attempt.
    pub weight: f64,
    /// As stored; `None` for a key not seen before.
    pub served: Option<f64>,
    pub rows: VecDeque<(u8, T)>,
}

/// Up to `limit` rows in dispatch order, and each lane's standing after
/// them (empty when there was at most one lane: nothing to keep).
pub fn interleave<T>(mut lanes: Vec<Lane<T>>, limit: usize) -> (Vec<T>, Vec<(String, f64)>) {
    lanes.retain(|l| !l.rows.is_empty());
    if lanes.len() <= 1 {
        let rows = lanes.pop().map(|l| l.rows.into_iter().take(limit).map(|(_, r)| r).collect());
        return (rows.unwrap_or_default(), Vec::new());
    }
    let floor = lanes.iter().filter_map(|l| l.served).fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let mut served: Vec<f64> = lanes.iter().map(|l| l.served.unwrap_or(floor).max(floor)).collect();
    let mut picked = Vec::with_capacity(limit);
    while picked.len() < limit {
        let Some(priority) = lanes.iter().filter_map(|l| l.rows.front().map(|(p, _)| *p)).min() else { break };
        let next = (0..lanes.len())
            .filter(|&i| lanes[i].rows.front().is_some_and(|(p, _)| *p == priority))
            .min_by(|&a, &b| {
                let (sa, sb) = (served[a] + 1.0 / lanes[a].weight, served[b] + 1.0 / lanes[b].weight);
                sa.total_cmp(&sb).then_with(|| lanes[a].key.cmp(&lanes[b].key))
            })
            .expect("a lane has this priority");
        let (_, row) = lanes[next].rows.pop_front().expect("the lane has a head");
        served[next] += 1.0 / lanes[next].weight;
        picked.push(row);
    }
    let least = served.iter().copied().fold(f64::INFINITY, f64::min);
    let standing = lanes.into_iter().zip(served).map(|(l, s)| (l.key, s - least)).collect();
    (picked, standing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(key: &str, weight: f64, served: Option<f64>, rows: &[(u8, u32)]) -> Lane<u32> {
        Lane { key: key.into(), weight, served, rows: rows.iter().copied().collect() }
    }

    #[test]
    fn keys_share_by_weight_within_a_priority_and_priority_comes_first() {
        let a: Vec<(u8, u32)> = (0..100).map(|i| (3, i)).collect();
        let b: Vec<(u8, u32)> = (1000..1100).map(|i| (3, i)).collect();
        let (rows, standing) = interleave(vec![lane("a", 1.0, None, &a), lane("b", 3.0, None, &b)], 40);
        let from_b = rows.iter().filter(|r| **r >= 1000).count();
        assert_eq!(from_b, 30, "b has 3× a's weight: {rows:?}");
        assert_eq!(standing, [("a".to_string(), 0.0), ("b".to_string(), 0.0)], "served 10 each, for their weights");

        let (rows, _) = interleave(vec![lane("a", 1.0, None, &[(3, 1), (3, 2)]), lane("b", 1.0, None, &[(1, 9)])], 3);
        assert_eq!(rows, [9, 1, 2], "priority 1 first, whatever the key");
    }

    #[test]
    fn a_key_behind_catches_up_and_an_idle_returning_key_gets_no_burst() {
        // a was served 10 more than b: b goes first until level.
        let a: Vec<(u8, u32)> = (0..20).map(|i| (3, i)).collect();
        let b: Vec<(u8, u32)> = (100..120).map(|i| (3, i)).collect();
        let (rows, standing) = interleave(vec![lane("a", 1.0, Some(10.0), &a), lane("b", 1.0, Some(0.0), &b)], 12);
        assert!(rows[..10].iter().all(|r| *r >= 100), "{rows:?}");
        assert_eq!(standing.iter().map(|(_, s)| *s).fold(f64::INFINITY, f64::min), 0.0);
        // A new key starts level with the least-served one.
        let (rows, _) = interleave(vec![lane("a", 1.0, Some(5.0), &a), lane("c", 1.0, None, &b)], 4);
        assert_eq!(rows, [0, 100, 1, 101]);
    }

    #[test]
    fn one_lane_keeps_its_order_and_no_standing_is_written() {
        let (rows, standing) = interleave(vec![lane("", 1.0, None, &[(2, 1), (3, 2), (3, 3)])], 2);
        assert_eq!((rows, standing.len()), (vec![1, 2], 0));
    }
}
