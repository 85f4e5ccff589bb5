// SPDX-License-Identifier: GPL-2.0
//! The fuzzer's random numbers: SplitMix64, seeded, so that a stream replays from its seed.

pub struct Rng(u64);

impl Rng {
    /// The stream of worker `thread` of process `proc` of a run seeded with `seed`.
    pub fn new(seed: u64, proc: u64, thread: u64) -> Self {
        let mut r = Self(seed ^ (proc << 40) ^ (thread << 20) ^ 0x5653_4655_5a5a_0001);
        // Let nearby seeds diverge.
        r.next();
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// An element of `v` (`v` not empty).
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }

    /// A size as hostile callers and real ones pass them: mostly a few pages, sometimes 0,
    /// unaligned, at a boundary or huge.
    pub fn size(&mut self, max_sane: u64) -> u64 {
        match self.below(16) {
            0 => 0,
            1 => 1 + self.below(4095),
            2 => u64::MAX - self.below(4096),
            3 => 1 << (32 + self.below(31)),
            4 => (1 << 32) - 4096 * self.below(2),
            5 => 4096 * (1 + self.below(4)) + self.below(2),
            _ => 4096 * (1 + self.below(max_sane / 4096)),
        }
    }

    /// A 32-bit value: `valid` mostly, else 0, all ones, a near neighbour or anything.
    pub fn u32_or(&mut self, valid: u32) -> u32 {
        match self.below(12) {
            0 => 0,
            1 => u32::MAX,
            2 => valid.wrapping_add(1),
            3 => self.next() as u32,
            _ => valid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::new(7, 0, 0), |r, _| Some(r.next()))
            .collect();
        let b: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::new(7, 0, 0), |r, _| Some(r.next()))
            .collect();
        let c: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::new(7, 0, 1), |r, _| Some(r.next()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_below() {
        let mut r = Rng::new(1, 2, 3);
        assert!((0..1000).all(|_| r.below(5) < 5));
        assert_eq!(r.below(0), 0);
    }
}
