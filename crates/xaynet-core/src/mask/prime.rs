//! A deterministic primality test and `next_prime`, used to compute the group orders of the
//! `Prime` mask configurations from their formula instead of a table.
//!
//! The test is Baillie–PSW (a strong Fermat test to base 2 followed by a strong Lucas test
//! with Selfridge's parameters), after trial division and strong tests to the first twelve
//! prime bases. No randomness is involved: the same input always gives the same answer.
//! BPSW has no known counterexample and is proven correct below 2^64.

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};

const SMALL_PRIMES: [u32; 168] = small_primes();

const fn small_primes() -> [u32; 168] {
    let mut out = [0u32; 168];
    let mut n = 2u32;
    let mut count = 0;
    while count < 168 {
        let mut d = 2;
        let mut prime = true;
        while d * d <= n {
            if n.is_multiple_of(d) {
                prime = false;
                break;
            }
            d += 1;
        }
        if prime {
            out[count] = n;
            count += 1;
        }
        n += 1;
    }
    out
}

/// Whether `n` is (with the certainty of BPSW) prime.
pub fn is_prime(n: &BigUint) -> bool {
    if let Some(small) = n.to_u32() {
        if small < 2 {
            return false;
        }
        if SMALL_PRIMES.contains(&small) {
            return true;
        }
    }
    for p in SMALL_PRIMES {
        if (n % p).is_zero() {
            return false;
        }
    }
    // n has no factor below 1000; if n < 1000^2 that already proves it prime.
    if n < &BigUint::from(1_000_000u32) {
        return true;
    }
    for base in &SMALL_PRIMES[..12] {
        if !strong_probable_prime(n, &BigUint::from(*base)) {
            return false;
        }
    }
    strong_lucas_probable_prime(n)
}

/// The smallest prime `≥ n`.
pub fn next_prime(n: &BigUint) -> BigUint {
    let two = BigUint::from(2u32);
    if n <= &two {
        return two;
    }
    let mut candidate = n.clone();
    if candidate.is_even() {
        candidate += 1u32;
    }
    loop {
        if is_prime(&candidate) {
            return candidate;
        }
        candidate += 2u32;
    }
}

/// Miller–Rabin strong probable-prime test of odd `n > base` to `base`.
fn strong_probable_prime(n: &BigUint, base: &BigUint) -> bool {
    let n_minus_1 = n - 1u32;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let mut x = base.modpow(&d, n);
    if x.is_one() || x == n_minus_1 {
        return true;
    }
    for _ in 1..s {
        x = (&x * &x) % n;
        if x == n_minus_1 {
            return true;
        }
        if x.is_one() {
            return false;
        }
    }
    false
}

/// Jacobi symbol (a/n) for odd positive n, small arguments.
fn jacobi_small(mut a: u64, mut n: u64) -> i32 {
    let mut result = 1;
    a %= n;
    while a != 0 {
        while a.is_multiple_of(2) {
            a /= 2;
            if n % 8 == 3 || n % 8 == 5 {
                result = -result;
            }
        }
        std::mem::swap(&mut a, &mut n);
        if a % 4 == 3 && n % 4 == 3 {
            result = -result;
        }
        a %= n;
    }
    if n == 1 {
        result
    } else {
        0
    }
}

/// Jacobi symbol (d/n) for a small signed `d` and a big odd `n`.
fn jacobi(d: i64, n: &BigUint) -> i32 {
    let n_mod8 = (n % 8u32).to_u32().unwrap_or(0);
    let mut sign = 1;
    let mut a = d.unsigned_abs();
    if d < 0 && n_mod8 % 4 == 3 {
        sign = -sign; // (−1/n)
    }
    while a.is_multiple_of(2) && a != 0 {
        a /= 2;
        if n_mod8 == 3 || n_mod8 == 5 {
            sign = -sign; // (2/n)
        }
    }
    if a == 1 {
        return sign;
    }
    // Quadratic reciprocity for odd a: (a/n) = (n/a) · (−1)^((a−1)/2 · (n−1)/2).
    let n_mod_a = (n % a).to_u64().unwrap_or(0);
    if a % 4 == 3 && n_mod8 % 4 == 3 {
        sign = -sign;
    }
    sign * jacobi_small(n_mod_a, a)
}

fn mod_signed(x: i64, n: &BigUint) -> BigUint {
    let r = BigUint::from(x.unsigned_abs()) % n;
    if x < 0 && !r.is_zero() {
        n - r
    } else {
        r
    }
}

fn half_mod(x: BigUint, n: &BigUint) -> BigUint {
    if x.is_even() {
        x >> 1u32
    } else {
        (x + n) >> 1u32
    }
}

/// Strong Lucas probable-prime test with Selfridge's method A parameters (P = 1).
fn strong_lucas_probable_prime(n: &BigUint) -> bool {
    let root = n.sqrt();
    if &(&root * &root) == n {
        return false;
    }
    let mut d: i64 = 5;
    loop {
        match jacobi(d, n) {
            -1 => break,
            0 if BigUint::from(d.unsigned_abs()) != *n => return false,
            _ => {}
        }
        d = if d > 0 { -(d + 2) } else { -(d - 2) };
    }
    let q = (1 - d) / 4;
    let dm = mod_signed(d, n);
    let qm = mod_signed(q, n);
    let two_q = |qk: &BigUint| (qk << 1u32) % n;

    let n_plus_1 = n + 1u32;
    let s = n_plus_1.trailing_zeros().unwrap_or(0);
    let k = &n_plus_1 >> s;

    // U_1 = 1, V_1 = P = 1, Q^1.
    let mut u = BigUint::one();
    let mut v = BigUint::one();
    let mut qk = qm.clone();
    let bits = k.bits();
    for i in (0..bits.saturating_sub(1)).rev() {
        // Doubling: U_2k = U_k V_k, V_2k = V_k^2 − 2 Q^k.
        u = (&u * &v) % n;
        v = ((&v * &v) + n - two_q(&qk)) % n;
        qk = (&qk * &qk) % n;
        if k.bit(i) {
            // Increment: U_{k+1} = (P U + V) / 2, V_{k+1} = (D U + P V) / 2.
            let nu = half_mod((&u + &v) % n, n);
            let nv = half_mod((&dm * &u + &v) % n, n);
            u = nu;
            v = nv;
            qk = (&qk * &qm) % n;
        }
    }
    if u.is_zero() || v.is_zero() {
        return true;
    }
    for _ in 1..s {
        v = ((&v * &v) + n - two_q(&qk)) % n;
        qk = (&qk * &qk) % n;
        if v.is_zero() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(n: u64) -> bool {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn agrees_with_trial_division() {
        for n in 0u64..20_000 {
            assert_eq!(is_prime(&BigUint::from(n)), naive(n), "{n}");
        }
        for n in (1_000_000_000u64..1_000_002_000).chain(4_294_967_000..4_294_968_000) {
            assert_eq!(is_prime(&BigUint::from(n)), naive(n), "{n}");
        }
    }

    #[test]
    fn rejects_pseudoprimes_and_squares() {
        // Strong pseudoprimes to several bases, Carmichael numbers and a prime square.
        for n in [
            2047u64,
            3_215_031_751,
            2_152_302_898_747,
            3_474_749_660_383,
            341_550_071_728_321,
            561,
            41041,
            825_265,
            1_000_003u64 * 1_000_003,
        ] {
            assert!(!is_prime(&BigUint::from(n)), "{n}");
        }
        // Lucas pseudoprimes (strong, Selfridge): composite, must be caught by the MR part.
        for n in [5459u64, 5777, 10877, 16109, 18971] {
            assert!(
                !strong_lucas_probable_prime(&BigUint::from(n)) || !is_prime(&BigUint::from(n))
            );
        }
    }

    #[test]
    fn known_primes() {
        // 2^127 − 1 and 2^89 − 1 are Mersenne primes; 2^128 + 1 is not prime.
        let one = BigUint::one();
        assert!(is_prime(&((&one << 127u32) - 1u32)));
        assert!(is_prime(&((&one << 89u32) - 1u32)));
        assert!(!is_prime(&((&one << 128u32) + 1u32)));
        assert_eq!(
            next_prime(&BigUint::from(20_000_000_000_001u64)),
            BigUint::from(20_000_000_000_021u64)
        );
        assert_eq!(next_prime(&BigUint::from(0u32)), BigUint::from(2u32));
        assert_eq!(next_prime(&BigUint::from(14u32)), BigUint::from(17u32));
    }
}
