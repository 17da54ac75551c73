use std::time::Instant;
use xaynet_core::mask::{Aggregation, Group, MaskConfigPair, MaskSeed, Masker};
use xaynet_core::model::{Scalar, Weights};
fn main() {
    let n = 1_000_000;
    let configs = MaskConfigPair::default();
    let g = Group::new(configs.vect);
    let masker = Masker::new(configs);
    let mut agg = Aggregation::new(configs, n);
    let mut masks = Aggregation::new(configs, n);
    for i in 0..3u8 {
        let w: Vec<f32> = (0..n).map(|j| ((j * 7 + i as usize) % 1000) as f32 / 1000.0 - 0.5).collect();
        let seed = MaskSeed::from_bytes([i; 32]);
        agg.aggregate(masker.mask(&seed, Weights::F32(&w), &Scalar::unit()).unwrap()).unwrap();
        masks.aggregate(seed.derive_mask(n, &g, &g)).unwrap();
    }
    let mask = masks.sum().unwrap().clone();
    for _ in 0..3 {
        let t = Instant::now();
        agg.validate_unmasking(&mask).unwrap();
        let t1 = t.elapsed();
        let u = agg.unmask(&mask).unwrap();
        let t2 = t.elapsed();
        let f = u.to_f32().unwrap();
        let t3 = t.elapsed();
        println!("validate {:?} unmask {:?} to_f32 {:?} {}", t1, t2 - t1, t3 - t2, f[5]);
    }
}
