//! OS randomness for nonces and data keys, buffered per thread: one `getrandom` call fills
//! 4 KiB that is then handed out in pieces. Invariant: every byte is handed out at most once and
//! is zeroed in the buffer as it leaves, so no two nonces or keys share bytes.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

const POOL: usize = 4096;

struct Pool {
    buf: Box<[u8; POOL]>,
    /// Next unused byte; `POOL` means empty.
    pos: usize,
}

thread_local! {
    static THREAD_POOL: RefCell<Pool> = RefCell::new(Pool { buf: Box::new([0; POOL]), pos: POOL });
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fill `out` with fresh random bytes.
pub fn fill(out: &mut [u8]) -> Result<(), RandomError> {
    if out.len() > POOL / 4 {
        return SystemRandom::new().fill(out).map_err(|_| RandomError);
    }
    THREAD_POOL.with_borrow_mut(|pool| {
        if pool.pos + out.len() > POOL {
            SystemRandom::new()
                .fill(pool.buf.as_mut_slice())
                .map_err(|_| RandomError)?;
            pool.pos = 0;
        }
        let end = pool.pos + out.len();
        let chunk = pool.buf.get_mut(pool.pos..end).ok_or(RandomError)?;
        out.copy_from_slice(chunk);
        chunk.zeroize();
        pool.pos = end;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_draws_differ_and_span_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let mut n = [0u8; 12];
            fill(&mut n).unwrap();
            assert!(seen.insert(n), "a nonce repeated");
        }
    }
}
