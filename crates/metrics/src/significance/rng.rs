//! numpy's `np.random.default_rng(seed)` stream, as far as sacrebleu 2.6.0 draws from it:
//! `SeedSequence` seeding, the `PCG64` bit generator (PCG XSL-RR 128/64) with numpy's 32-bit
//! buffering, `Generator.integers`/`choice` for int64 (Lemire's bounded method on 32-bit draws when
//! the range fits) and `Generator.integers(2, dtype=bool)` (one bit per draw from a 32-bit buffer).
//!
//! Hand-written rather than taken from `rand_pcg`: numpy's seeding (SeedSequence's hash mixing), its
//! step-then-output order and its half-word buffer for 32-bit draws all have to match bit for bit,
//! and they are a few dozen lines here; the algorithms follow numpy's documented `SeedSequence`
//! (O'Neill's seed_seq design), the PCG paper (XSL-RR output) and Lemire, "Fast random integer
//! generation in an interval" (2019).

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// `SeedSequence(entropy)` with no spawn key: its 4-word pool.
fn seed_sequence_pool(entropy: u64) -> [u32; POOL_SIZE] {
    // numpy splits a non-negative integer into 32-bit words, least significant first.
    let mut words = vec![entropy as u32];
    if entropy >> 32 != 0 {
        words.push((entropy >> 32) as u32);
    }
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut v = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> XSHIFT)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> XSHIFT)
    };
    let mut pool = [0u32; POOL_SIZE];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(words.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                let h = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    pool
}

/// `SeedSequence.generate_state(4, np.uint64)`.
fn generate_state_u64x4(pool: &[u32; POOL_SIZE]) -> [u64; 4] {
    let mut hash_const = INIT_B;
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        let mut v = pool[i % POOL_SIZE] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_const);
        *w = v ^ (v >> XSHIFT);
    }
    // A little-endian view of pairs of 32-bit words.
    std::array::from_fn(|i| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32))
}

const PCG_MULT: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;

/// numpy's `Generator(PCG64(seed))`, the bit generator plus the state its draws keep.
#[derive(Debug, Clone)]
pub struct NumpyRng {
    state: u128,
    inc: u128,
    /// numpy hands out the high half of a 64-bit draw as the next 32-bit draw.
    spare_u32: Option<u32>,
}

impl NumpyRng {
    /// `np.random.default_rng(seed)`.
    pub fn new(seed: u64) -> NumpyRng {
        let s = generate_state_u64x4(&seed_sequence_pool(seed));
        let init_state = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let init_seq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = NumpyRng {
            state: 0,
            inc: (init_seq << 1) | 1,
            spare_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// The next raw 64-bit output (`bit_generator.random_raw()`).
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let xored = ((self.state >> 64) as u64) ^ (self.state as u64);
        xored.rotate_right((self.state >> 122) as u32)
    }

    fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.spare_u32.take() {
            return v;
        }
        let next = self.next_u64();
        self.spare_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// One `integers(0, n)` draw for `1 <= n <= 2^32 - 1`: Lemire's method on a 32-bit draw.
    fn bounded_u32(&mut self, n: u32) -> u32 {
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        let mut leftover = m as u32;
        if leftover < n {
            let threshold = (u32::MAX - (n - 1)) % n;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// One `integers(0, n)` draw for `n > 2^32`: Lemire's method on a 64-bit draw.
    fn bounded_u64(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        let mut leftover = m as u64;
        if leftover < n {
            let threshold = (u64::MAX - (n - 1)) % n;
            while leftover < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
                leftover = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// `rng.choice(n, size=count, replace=True)` (= `rng.integers(0, n, size=count)`), in
    /// row-major order; `n` must be at least 1.
    pub fn choice(&mut self, n: usize, count: usize) -> Vec<usize> {
        let n = n as u64;
        let range = n - 1;
        let mut out = Vec::with_capacity(count);
        if range == 0 {
            out.resize(count, 0);
        } else if range == u64::from(u32::MAX) {
            out.extend((0..count).map(|_| self.next_u32() as usize));
        } else if range < u64::from(u32::MAX) {
            out.extend((0..count).map(|_| self.bounded_u32(n as u32) as usize));
        } else if range == u64::MAX {
            out.extend((0..count).map(|_| self.next_u64() as usize));
        } else {
            out.extend((0..count).map(|_| self.bounded_u64(n) as usize));
        }
        out
    }

    /// `rng.integers(2, size=count, dtype=bool)`: numpy fills the whole array from one 32-bit
    /// buffer, a bit at a time from the least significant, 32 draws per word.
    pub fn bools(&mut self, count: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(count);
        let mut buf = 0u32;
        let mut left = 0u32;
        for _ in 0..count {
            if left == 0 {
                buf = self.next_u32();
                left = 31;
            } else {
                buf >>= 1;
                left -= 1;
            }
            out.push(buf & 1 != 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy 2.4 for `np.random.default_rng(12345)`.
    #[test]
    fn seeding_and_raw_stream_match_numpy() {
        assert_eq!(
            generate_state_u64x4(&seed_sequence_pool(12345)),
            [
                13091511679009522556,
                13538552136045918767,
                7269824232120749972,
                4520223790601600371
            ]
        );
        let mut rng = NumpyRng::new(12345);
        assert_eq!(rng.state, 33261208707367790463622745601869196757);
        assert_eq!(rng.inc, 268209174141567072605526753992732310247);
        let raw: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            raw,
            [0x3a32b18db2ffc19d, 0x51171315c9e4c4de, 0xcc2024823444efd9]
        );
    }

    #[test]
    fn choice_matches_numpy() {
        // np.random.default_rng(12345).choice(1000, size=(3, 1000))[0, :5]
        assert_eq!(
            NumpyRng::new(12345).choice(1000, 5),
            [699, 227, 788, 316, 204]
        );
    }
}
