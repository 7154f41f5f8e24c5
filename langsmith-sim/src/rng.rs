//! A small deterministic PRNG (SplitMix64), so a seeded simulator behaves the same on every run.

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random (version 4 shaped) UUID drawn from this generator.
    pub fn uuid(&mut self) -> Uuid {
        let hi = self.next_u64().to_be_bytes();
        let lo = self.next_u64().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi);
        bytes[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::new(8).uuid(), Rng::new(7).uuid());
        assert_eq!(Rng::new(1).uuid().get_version_num(), 4);
    }

    #[test]
    fn floats_are_in_unit_interval() {
        let mut r = Rng::new(3);
        assert!((0..1000).map(|_| r.next_f64()).all(|f| (0.0..1.0).contains(&f)));
    }
}
