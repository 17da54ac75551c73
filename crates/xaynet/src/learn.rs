//! The demo's machine learning: the handwritten digits data set (UCI optdigits test part,
//! 1797 8×8 images, as shipped by the `smartcore` crate), a softmax-regression classifier in
//! plain Rust, and a non-IID split of the training data across participants.
//!
//! Weights are kept in [−1, 1] during training (projected gradient descent): the demo's mask
//! configuration (F32, bound B0) only represents weights in that range.

/// Pixels per image.
pub const FEATURES: usize = 64;
/// Digits 0–9.
pub const CLASSES: usize = 10;
/// Weights of the classifier: a 10×64 matrix and 10 biases.
pub const MODEL_LEN: usize = CLASSES * FEATURES + CLASSES;

/// Labelled examples.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// Pixels scaled to [0, 1], `FEATURES` per example.
    pub x: Vec<f32>,
    /// Digit of each example.
    pub y: Vec<u8>,
}

impl Data {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * FEATURES..(i + 1) * FEATURES]
    }

    fn push(&mut self, x: &[f32], y: u8) {
        self.x.extend_from_slice(x);
        self.y.push(y);
    }
}

/// A small deterministic generator (SplitMix64) for shuffles: the demo is reproducible.
pub struct Shuffler(u64);

impl Shuffler {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The digits data set, shuffled with `seed` and split into (train, test) with `test_share`
/// of the examples held out.
pub fn digits(seed: u64, test_share: f64) -> (Data, Data) {
    let d = smartcore::dataset::digits::load_dataset();
    let n = d.num_samples;
    let mut order: Vec<usize> = (0..n).collect();
    Shuffler::new(seed).shuffle(&mut order);
    let test_n = ((n as f64) * test_share).round() as usize;
    let (mut train, mut test) = (Data::default(), Data::default());
    for (k, &i) in order.iter().enumerate() {
        let x: Vec<f32> = d.data[i * FEATURES..(i + 1) * FEATURES]
            .iter()
            .map(|v| v / 16.0)
            .collect();
        let y = d.target[i] as u8;
        if k < test_n {
            test.push(&x, y);
        } else {
            train.push(&x, y);
        }
    }
    (train, test)
}

/// Splits `data` non-IID across `parts` participants: sorted by digit and cut into
/// `shards_each · parts` shards; each participant gets `shards_each` random shards, so it holds
/// only a few digits (with 3 shards: three or four of the ten).
pub fn split_non_iid(data: &Data, parts: usize, shards_each: usize, seed: u64) -> Vec<Data> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| (data.y[i], i));
    let shards = shards_each.max(1) * parts;
    let mut shard_ids: Vec<usize> = (0..shards).collect();
    Shuffler::new(seed).shuffle(&mut shard_ids);
    let per = data.len() / shards;
    let mut out = vec![Data::default(); parts];
    for (k, &s) in shard_ids.iter().enumerate() {
        let start = s * per;
        let end = if s + 1 == shards {
            data.len()
        } else {
            start + per
        };
        for &i in &order[start..end] {
            out[k % parts].push(data.row(i), data.y[i]);
        }
    }
    out
}

/// Class probabilities of one example.
fn softmax(w: &[f32], x: &[f32]) -> [f32; CLASSES] {
    let mut z = [0f32; CLASSES];
    for (c, zc) in z.iter_mut().enumerate() {
        let row = &w[c * FEATURES..(c + 1) * FEATURES];
        *zc = row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + w[CLASSES * FEATURES + c];
    }
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for zc in z.iter_mut() {
        *zc = (*zc - max).exp();
        sum += *zc;
    }
    for zc in z.iter_mut() {
        *zc /= sum;
    }
    z
}

/// The learning rate of round `round` (from 0) of `rounds`: linear decay from `rate` to a
/// tenth of it. The demo's operator announces it; central training uses the same schedule.
pub fn rate_at(rate: f32, round: usize, rounds: usize) -> f32 {
    rate * (1.0 - 0.9 * round.min(rounds) as f32 / rounds.max(1) as f32)
}

/// `steps` steps of full-batch gradient descent on the cross-entropy, from `w`, with the
/// weights projected back into [−1, 1] after every step.
pub fn train(w: &mut [f32], data: &Data, steps: usize, rate: f32) {
    if data.is_empty() {
        return;
    }
    let mut grad = vec![0f32; MODEL_LEN];
    for _ in 0..steps {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for i in 0..data.len() {
            let x = data.row(i);
            let mut p = softmax(w, x);
            p[data.y[i] as usize] -= 1.0;
            for (c, pc) in p.iter().enumerate() {
                let g = &mut grad[c * FEATURES..(c + 1) * FEATURES];
                for (gj, xj) in g.iter_mut().zip(x) {
                    *gj += pc * xj;
                }
                grad[CLASSES * FEATURES + c] += pc;
            }
        }
        let scale = rate / data.len() as f32;
        for (wi, gi) in w.iter_mut().zip(&grad) {
            *wi = (*wi - scale * gi).clamp(-1.0, 1.0);
        }
    }
}

/// (accuracy, mean cross-entropy) of the model on `data`.
pub fn evaluate(w: &[f32], data: &Data) -> (f64, f64) {
    let mut correct = 0usize;
    let mut loss = 0f64;
    for i in 0..data.len() {
        let p = softmax(w, data.row(i));
        let best = (0..CLASSES)
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0);
        if best == data.y[i] as usize {
            correct += 1;
        }
        loss -= f64::from(p[data.y[i] as usize].max(1e-12)).ln();
    }
    let n = data.len().max(1) as f64;
    (correct as f64 / n, loss / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_set_and_split() {
        let (train, test) = digits(1, 0.2);
        assert_eq!(train.len() + test.len(), 1797);
        assert_eq!(test.len(), 359);
        assert!(train.x.iter().all(|v| (0.0..=1.0).contains(v)));
        let parts = split_non_iid(&train, 20, 3, 2);
        assert_eq!(parts.iter().map(Data::len).sum::<usize>(), train.len());
        // Non-IID: every participant sees only a few digits.
        for p in &parts {
            let mut digits: Vec<u8> = p.y.clone();
            digits.sort();
            digits.dedup();
            assert!(digits.len() <= 6, "{digits:?}");
        }
    }

    #[test]
    fn training_learns_and_stays_in_bounds() {
        let (train_set, test) = digits(1, 0.2);
        let mut w = vec![0f32; MODEL_LEN];
        let (before, _) = evaluate(&w, &test);
        train(&mut w, &train_set, 50, 1.0);
        let (after, loss) = evaluate(&w, &test);
        assert!(
            before < 0.2 && after > 0.85,
            "{before} → {after} (loss {loss})"
        );
        assert!(w.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
}
