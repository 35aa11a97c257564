use super::*;
use proptest::prelude::*;

const NS: i64 = 1_000_000_000;
/// 2024-01-01T00:00:00Z in nanoseconds.
const START: i64 = 1_704_067_200 * NS;

/// The summary by the definitions, written out as loops.
fn naive_summary(points: &[(i64, f64)]) -> Summary {
    let (mut min, mut max, mut sum, mut increase) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    for (i, &(_, v)) in points.iter().enumerate() {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum += v;
        if i > 0 {
            let prev = points[i - 1].1;
            increase += if v >= prev { v - prev } else { v };
        }
    }
    Summary {
        count: points.len() as u32,
        min,
        max,
        sum,
        first: points[0],
        last: points[points.len() - 1],
        increase,
    }
}

fn assert_round_trip(points: &[(i64, f64)]) -> Vec<u8> {
    let bytes = encode(points).unwrap();
    let back = decode(&bytes).unwrap();
    assert_eq!(back.len(), points.len());
    for (a, b) in points.iter().zip(&back) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.to_bits(), b.1.to_bits(), "{a:?} came back as {b:?}");
    }
    assert_eq!(summary_of(&bytes).unwrap(), naive_summary(points));
    bytes
}

/// Recomputes the CRC after a deliberate edit, so the parser behind it is what gets tested.
fn reseal(bytes: &mut Vec<u8>) {
    bytes.truncate(bytes.len() - CRC_LEN);
    let crc = crc32fast::hash(bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
}

#[test]
fn round_trips_bit_for_bit() {
    let subnormal = f64::from_bits(1);
    let cases: Vec<(&str, Vec<(i64, f64)>)> = vec![
        ("single point", vec![(0, 1.5)]),
        ("single negative zero at i64::MIN", vec![(i64::MIN, -0.0)]),
        ("two points", vec![(10, 21.3), (20, 21.4)]),
        (
            "irregular times",
            vec![
                (5, 1.0),
                (6, 2.0),
                (1_000, 3.0),
                (1_001, 3.0),
                (9_999_999, 4.0),
            ],
        ),
        (
            "negative times",
            vec![
                (-3_000 * NS, 1.0),
                (-2_000 * NS, 1.5),
                (-1, 2.0),
                (0, 2.5),
                (7, 3.0),
            ],
        ),
        ("whole i64 range", vec![(i64::MIN, 0.0), (i64::MAX, 1.0)]),
        (
            "deltas that overflow i64",
            vec![
                (i64::MIN, 1.0),
                (i64::MIN + 1, 2.0),
                (i64::MAX - 1, 3.0),
                (i64::MAX, 4.0),
            ],
        ),
        (
            "through zero",
            vec![(i64::MIN, 1.0), (-1, 1.0), (0, 1.0), (i64::MAX, 1.0)],
        ),
        (
            "extreme floats",
            vec![
                (1, f64::MAX),
                (2, f64::MIN),
                (3, f64::MIN_POSITIVE),
                (4, subnormal),
                (5, -subnormal),
                (6, -0.0),
                (7, 0.0),
                (8, 1e300),
                (9, -1e-300),
                (10, std::f64::consts::PI),
                (11, f64::from_bits(0x000f_ffff_ffff_ffff)),
            ],
        ),
        ("negative zeros", vec![(1, -0.0), (2, -0.0), (3, -0.0)]),
        (
            "decimals with a negative zero",
            vec![(1, 0.1), (2, -0.0), (3, 0.2)],
        ),
        (
            "integers beyond 2^53",
            vec![(1, 9_007_199_254_740_992.0), (2, 9_007_199_254_740_994.0)],
        ),
        (
            "large decimals",
            vec![(1, 123_456_789.123_456_7), (2, -0.000_000_001)],
        ),
        (
            "counter with a reset",
            vec![(1, 10.0), (2, 12.0), (3, 3.0), (4, 5.0)],
        ),
        (
            "second-precision jitter",
            vec![
                (START, 1.0),
                (START + 601 * NS, 1.0),
                (START + 1199 * NS, 1.0),
                (START + 1800 * NS, 2.0),
            ],
        ),
    ];
    for (name, points) in cases {
        let bytes = encode(&points).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bits = |p: &[(i64, f64)]| p.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&points), "{name}");
        assert_eq!(
            summary_of(&bytes).unwrap(),
            naive_summary(&points),
            "{name}"
        );
    }
}

#[test]
fn summary_follows_query_semantics() {
    let s = summary_of(&assert_round_trip(&[
        (1, 10.0),
        (2, 12.0),
        (3, 3.0),
        (4, 5.0),
    ]))
    .unwrap();
    assert_eq!(
        s,
        Summary {
            count: 4,
            min: 3.0,
            max: 12.0,
            sum: 30.0,
            first: (1, 10.0),
            last: (4, 5.0),
            // 2 up, a reset to 3 (counts 3), 2 up.
            increase: 7.0,
        }
    );
}

#[test]
fn rejects_invalid_input() {
    assert_eq!(encode(&[]), Err(BlockError::Empty));
    let too_many: Vec<_> = (0..=MAX_POINTS as i64).map(|t| (t, 0.0)).collect();
    assert_eq!(
        encode(&too_many),
        Err(BlockError::TooMany { count: 65_536 })
    );
    assert_eq!(
        encode(&[(1, 0.0), (1, 0.0)]),
        Err(BlockError::NotIncreasing { index: 1 })
    );
    assert_eq!(
        encode(&[(1, 0.0), (2, 0.0), (0, 0.0)]),
        Err(BlockError::NotIncreasing { index: 2 })
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            encode(&[(1, 0.0), (2, bad)]),
            Err(BlockError::NonFinite { index: 1 })
        );
    }
}

#[test]
fn holds_the_maximum_count() {
    let points: Vec<_> = (0..MAX_POINTS as i64)
        .map(|i| (i * 60 * NS, (i % 1000) as f64 / 4.0))
        .collect();
    assert_round_trip(&points);
}

#[test]
fn rejects_damaged_blocks() {
    let good = encode(&[
        (START, 21.3),
        (START + 600 * NS, 21.4),
        (START + 1200 * NS, 21.2),
    ])
    .unwrap();
    assert!(matches!(
        decode(&[]),
        Err(BlockError::Truncated { got: 0, .. })
    ));
    let mut other_version = good.clone();
    other_version[0] = 2;
    assert_eq!(
        decode(&other_version),
        Err(BlockError::UnknownVersion { version: 2 })
    );
    let mut flipped = good.clone();
    flipped[HEADER_LEN + 2] ^= 0x10;
    assert!(matches!(decode(&flipped), Err(BlockError::Checksum { .. })));
    assert!(matches!(
        summary_of(&flipped),
        Err(BlockError::Checksum { .. })
    ));
    assert!(matches!(
        decode(&good[..10]),
        Err(BlockError::Truncated {
            expected: MIN_LEN,
            got: 10
        })
    ));
}

#[test]
fn a_huge_claimed_count_is_rejected_before_allocating() {
    let mut block = encode(&[(0, 1.0), (65_534, 1.0)]).unwrap();
    block[1..5].copy_from_slice(&65_535u32.to_le_bytes());
    reseal(&mut block);
    assert!(matches!(decode(&block), Err(BlockError::Truncated { .. })));
    assert!(matches!(
        summary_of(&block),
        Err(BlockError::Truncated { .. })
    ));
}

#[test]
fn a_summary_that_disagrees_with_the_points_is_corrupt() {
    let mut block = encode(&[(0, 1.0), (1, 2.0), (2, 3.0)]).unwrap();
    // The sum sits after count, first and last: 1 + 4 + 16 + 16 + min 8 + max 8.
    let at = 1 + 4 + 16 + 16 + 16;
    block[at..at + 8].copy_from_slice(&7.0f64.to_le_bytes());
    reseal(&mut block);
    assert_eq!(summary_of(&block).unwrap().sum, 7.0);
    assert_eq!(
        decode(&block),
        Err(BlockError::Corrupt {
            reason: "summary does not match the points"
        })
    );
}

/// Tiny deterministic generator, so the compression figures are reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 30 days of 10-minute air temperatures with one decimal: a daily cycle, a weekly drift and sensor noise.
fn temperatures(rng: &mut XorShift) -> Vec<(i64, f64)> {
    let mut noise = 0.0;
    (0..4_320)
        .map(|i| {
            let day = f64::from(i) / 144.0;
            noise = 0.8 * noise + rng.uniform(-0.2, 0.2);
            let celsius = 12.0
                + 5.0 * (std::f64::consts::TAU * (day - 0.375)).sin()
                + 3.0 * (std::f64::consts::TAU * day / 7.0).sin()
                + noise;
            (
                START + i64::from(i) * 600 * NS,
                (celsius * 10.0).round() / 10.0,
            )
        })
        .collect()
}

/// An energy meter read every 15 minutes, rising 0.5–3 kWh per reading, in kWh with three decimals.
fn energy(rng: &mut XorShift) -> Vec<(i64, f64)> {
    let mut wh: i64 = 12_345_678;
    (0..4_320)
        .map(|i| {
            wh += 500 + (rng.next() % 2_501) as i64;
            (START + i64::from(i) * 900 * NS, wh as f64 / 1000.0)
        })
        .collect()
}

#[test]
fn compresses_realistic_city_data() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let per_point = |name: &str, points: &[(i64, f64)]| {
        let bytes = assert_round_trip(points);
        let ratio = bytes.len() as f64 / points.len() as f64;
        println!(
            "{name}: {} points in {} bytes = {ratio:.3} bytes/point",
            points.len(),
            bytes.len()
        );
        ratio
    };
    let temps = temperatures(&mut rng);
    assert!(per_point("temperature, 10 min, 1 decimal", &temps) < 1.0);
    let meter = energy(&mut rng);
    assert!(per_point("energy counter, 15 min, 3 decimals", &meter) < 2.5);

    // Device clocks stamp whole seconds and wander by one or two.
    let jittered: Vec<_> = temps
        .iter()
        .map(|&(t, v)| (t + (rng.next() % 5) as i64 * NS - 2 * NS, v))
        .collect();
    assert!(per_point("temperature, second-precision jitter", &jittered) < 1.5);
    // Arbitrary doubles fall back to Gorilla XOR.
    let noisy: Vec<_> = temps
        .iter()
        .map(|&(t, v)| (t, v + rng.uniform(-1e-3, 1e-3)))
        .collect();
    assert!(per_point("temperature plus float noise (XOR)", &noisy) < 9.0);
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        (-1_000_000i64..1_000_000, 0usize..5).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
        Just(-0.0),
        Just(f64::from_bits(1)),
    ]
    .prop_filter("finite", |v| v.is_finite())
}

fn points() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        prop_oneof![
            prop::collection::btree_set(any::<i64>(), 1..200),
            // Near-regular series, where the compact paths are taken.
            (any::<i32>(), prop::collection::vec(0i64..3, 1..200)).prop_map(|(start, jitter)| {
                jitter
                    .iter()
                    .enumerate()
                    .map(|(i, j)| i64::from(start) * NS + (i as i64 * 600 + j) * NS)
                    .collect()
            }),
        ],
        prop::collection::vec(finite_f64(), 200),
    )
        .prop_map(|(times, values)| times.into_iter().zip(values).collect())
}

proptest! {
    #[test]
    fn any_points_round_trip(points in points()) {
        assert_round_trip(&points);
    }

    #[test]
    fn decimal_series_round_trip(
        start in any::<i64>(),
        steps in prop::collection::vec(-50i64..50, 1..300),
        k in 0i32..6,
    ) {
        let mut m = 0i64;
        let points: Vec<_> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                m += s;
                (start.saturating_add(i as i64 * 600 * NS), m as f64 / 10f64.powi(k))
            })
            .collect();
        prop_assume!(points.windows(2).all(|w| w[0].0 < w[1].0));
        assert_round_trip(&points);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(decode(&bytes).is_err());
        let _ = summary_of(&bytes);
        // Past the version and checksum checks, into the parsers.
        let mut sealed = bytes;
        sealed.insert(0, VERSION);
        sealed.extend_from_slice(&[0; CRC_LEN]);
        reseal(&mut sealed);
        let _ = decode(&sealed);
        let _ = summary_of(&sealed);
    }

    #[test]
    fn damaged_blocks_are_errors(
        points in points(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let block = encode(&points).unwrap();
        let mut flipped = block.clone();
        flipped[at.index(block.len())] ^= mask;
        prop_assert!(decode(&flipped).is_err());
        prop_assert!(summary_of(&flipped).is_err());
        let truncated = &block[..cut.index(block.len())];
        prop_assert!(decode(truncated).is_err());
        prop_assert!(summary_of(truncated).is_err());
    }

    #[test]
    fn resealed_damage_never_panics(
        points in points(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let mut block = encode(&points).unwrap();
        for (at, mask) in flips {
            let i = at.index(block.len() - CRC_LEN);
            block[i] ^= mask;
        }
        reseal(&mut block);
        if let Ok(decoded) = decode(&block) {
            // Whatever decodes is a valid block in its own right.
            prop_assert!(encode(&decoded).is_ok());
        }
        let _ = summary_of(&block);
    }
}
