//! Global rate limits: a token bucket per queue, kept in the store so every
//! host draws from the same one. The arithmetic is here, shared by the
//! backends; each reads and writes the bucket's row in one transaction.

use super::Millis;

/// What a draw from a bucket gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tokens {
    /// Dispatches allowed now.
    pub granted: u32,
    /// When none were: the moment the next token is due.
    pub next_at: Option<Millis>,
}

/// A bucket refilled at `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub rate: f64,
    pub burst: f64,
}

impl Bucket {
    /// The bucket of a queue limited to `rate` dispatches per second: it
    /// holds 50 ms of them (at least one), so hosts draw in small batches.
    pub fn for_rate(rate: f64) -> Bucket {
        Bucket { rate, burst: (rate / 20.0).max(1.0) }
    }

    /// Draws up to `want` tokens from a bucket holding `tokens` at `at`
    /// (`None`: a new bucket, holding one); returns the draw and the
    /// bucket's new content (as of `now`).
    pub fn draw(&self, stored: Option<(f64, Millis)>, want: u32, now: Millis) -> (Tokens, f64) {
        let (tokens, at) = stored.unwrap_or((1.0, now));
        let elapsed = now.saturating_sub(at) as f64 / 1000.0;
        let tokens = (tokens + elapsed * self.rate).min(self.burst);
        let granted = (tokens.floor().max(0.0) as u32).min(want);
        let left = tokens - granted as f64;
        let next_at = (granted == 0).then(|| now + (((1.0 - left) / self.rate) * 1000.0).ceil().max(1.0) as Millis);
        (Tokens { granted, next_at }, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_grants_at_its_rate_and_says_when_the_next_token_is_due() {
        let b = Bucket::for_rate(10.0);
        let (t, left) = b.draw(None, 5, 1_000);
        assert_eq!((t.granted, left), (1, 0.0), "a new bucket holds one");
        let (t, left) = b.draw(Some((left, 1_000)), 5, 1_050);
        assert_eq!((t.granted, t.next_at), (0, Some(1_100)), "0.5 token after 50 ms: the next is due at 100 ms");
        let (t, _) = b.draw(Some((left, 1_050)), 5, 1_100);
        assert_eq!(t.granted, 1);
        // Idle for a minute: at most the burst (50 ms of the rate, ≥ 1).
        let (t, _) = Bucket::for_rate(1000.0).draw(Some((0.0, 0)), 500, 60_000);
        assert_eq!(t.granted, 50);
    }
}
