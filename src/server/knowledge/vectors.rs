//! Embedding vectors as stored (little-endian `f32` bytes, the same on
//! SQLite and PostgreSQL) and searched: vectors are unit length when
//! stored, so cosine similarity is a dot product, and the search is an
//! exact scan keeping the best `k` — at 50,000 chunks of 1,024 dimensions
//! a few milliseconds, with no approximation to explain away.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A vector as the database stores it.
pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// A stored vector back; `None` for bytes that are not whole `f32`s.
pub fn decode(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|four| f32::from_le_bytes([four[0], four[1], four[2], four[3]]))
            .collect(),
    )
}

/// Scales the vector to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = dot(vector, vector).sqrt();
    if norm > 0.0 && norm.is_finite() {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
}

/// Cosine similarity of two vectors of any length; 0 when their
/// dimensions differ or either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms > 0.0 {
        dot(a, b) / norms
    } else {
        0.0
    }
}

/// The dot product, in eight independent lanes so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// An item with its similarity to the query.
#[derive(Debug, Clone)]
pub struct Scored<T> {
    /// What was found.
    pub item: T,
    /// Its cosine similarity to the query, −1 to 1.
    pub score: f32,
}

/// Ordered by score, lowest first, so that the heap's top is the worst kept.
struct Worst<T>(Scored<T>);

impl<T> PartialEq for Worst<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Worst<T> {}
impl<T> PartialOrd for Worst<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Worst<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.score.total_cmp(&self.0.score)
    }
}

/// The `k` items most similar to `query` with a score of at least
/// `min_score`, best first. Query and items are unit vectors; an item of
/// other dimensions than the query's is never a match.
pub fn top_k<'v, T>(
    query: &[f32],
    items: impl IntoIterator<Item = (T, &'v [f32])>,
    k: usize,
    min_score: f32,
) -> Vec<Scored<T>> {
    let mut kept: BinaryHeap<Worst<T>> = BinaryHeap::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for (item, vector) in items {
        if vector.len() != query.len() {
            continue;
        }
        let score = dot(query, vector);
        if score < min_score || !score.is_finite() {
            continue;
        }
        if kept.len() == k && kept.peek().is_some_and(|worst| worst.0.score >= score) {
            continue;
        }
        kept.push(Worst(Scored { item, score }));
        if kept.len() > k {
            kept.pop();
        }
    }
    let mut best: Vec<Scored<T>> = kept.into_iter().map(|worst| worst.0).collect();
    best.sort_by(|a, b| b.score.total_cmp(&a.score));
    best
}

/// Rows of one flat matrix per scan thread at least: below this one thread
/// is faster than starting a second.
const ROWS_PER_THREAD: usize = 4_096;

/// [`top_k`] over `flat`, the rows of `dimensions` values each laid end to
/// end (one allocation, read in order: the scan is bound by memory
/// bandwidth). Large matrices are split between the machine's cores; the
/// items are row numbers.
pub fn top_k_rows(
    query: &[f32],
    flat: &[f32],
    dimensions: usize,
    k: usize,
    min_score: f32,
) -> Vec<Scored<usize>> {
    if dimensions == 0 || query.len() != dimensions {
        return Vec::new();
    }
    let rows = flat.len() / dimensions;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(rows / ROWS_PER_THREAD)
        .max(1);
    let scan = |first: usize, part: &[f32]| {
        top_k(
            query,
            part.chunks_exact(dimensions)
                .enumerate()
                .map(|(row, vector)| (first + row, vector)),
            k,
            min_score,
        )
    };
    if threads == 1 {
        return scan(0, flat);
    }
    let per_thread = rows.div_ceil(threads);
    let mut best: Vec<Scored<usize>> = std::thread::scope(|scope| {
        let parts: Vec<_> = flat
            .chunks(per_thread * dimensions)
            .enumerate()
            .map(|(i, part)| scope.spawn(move || scan(i * per_thread, part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_default())
            .collect()
    });
    best.sort_by(|a, b| b.score.total_cmp(&a.score));
    best.truncate(k);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_survive_the_bytes_exactly() {
        let vector = vec![0.5, -1.25, f32::MIN_POSITIVE, 3.0e7, 0.0];
        let bytes = encode(&vector);
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..4], &0.5f32.to_le_bytes());
        assert_eq!(decode(&bytes), Some(vector));
        assert_eq!(decode(&bytes[..7]), None);
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn cosine_is_the_angle_whatever_the_length() {
        let a: Vec<f32> = (0..21).map(|i| i as f32).collect();
        let doubled: Vec<f32> = a.iter().map(|x| x * 2.0).collect();
        assert!((cosine(&a, &doubled) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[0.0, 3.0])).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[-2.0, 0.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        let mut unit = doubled.clone();
        normalize(&mut unit);
        assert!((dot(&unit, &unit) - 1.0).abs() < 1e-5);
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, [0.0; 3]);
    }

    #[test]
    fn top_k_keeps_the_best_above_the_minimum_in_order() {
        let mut query = vec![1.0, 1.0, 0.0];
        normalize(&mut query);
        let raw = [
            [1.0, 0.0, 0.0],
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.9, 0.1],
            [-1.0, -1.0, 0.0],
            [0.2, 1.0, 0.0],
        ];
        let items: Vec<Vec<f32>> = raw
            .iter()
            .map(|v| {
                let mut v = v.to_vec();
                normalize(&mut v);
                v
            })
            .collect();
        let best = top_k(
            &query,
            items.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            3,
            0.5,
        );
        assert_eq!(best.iter().map(|s| s.item).collect::<Vec<_>>(), [1, 3, 5]);
        assert!(best.windows(2).all(|w| w[0].score >= w[1].score));
        let exact: Vec<f32> = best
            .iter()
            .map(|s| cosine(&query, &items[s.item]))
            .collect();
        for (scored, exact) in best.iter().zip(exact) {
            assert!((scored.score - exact).abs() < 1e-6);
        }
        let strict = top_k(
            &query,
            items.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            10,
            0.95,
        );
        assert_eq!(strict.iter().map(|s| s.item).collect::<Vec<_>>(), [1, 3]);
        let flat: Vec<f32> = items.iter().flatten().copied().collect();
        let rows = top_k_rows(&query, &flat, 3, 3, 0.5);
        assert_eq!(rows.iter().map(|s| s.item).collect::<Vec<_>>(), [1, 3, 5]);
        let other_dimensions = [vec![1.0f32, 1.0]];
        assert!(top_k(
            &query,
            other_dimensions.iter().map(|v| ((), v.as_slice())),
            3,
            -1.0
        )
        .is_empty());
    }
}

#[cfg(test)]
mod large {
    use super::*;

    #[test]
    fn a_split_scan_finds_what_one_thread_finds() {
        let dimensions = 16;
        let rows = ROWS_PER_THREAD * 3 + 17;
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut flat = Vec::with_capacity(rows * dimensions);
        for _ in 0..rows {
            let mut row: Vec<f32> = (0..dimensions).map(|_| next()).collect();
            normalize(&mut row);
            flat.extend(row);
        }
        let mut query: Vec<f32> = (0..dimensions).map(|_| next()).collect();
        normalize(&mut query);
        let split = top_k_rows(&query, &flat, dimensions, 10, -1.0);
        let single = top_k(&query, flat.chunks_exact(dimensions).enumerate(), 10, -1.0);
        assert_eq!(
            split.iter().map(|s| s.item).collect::<Vec<_>>(),
            single.iter().map(|s| s.item).collect::<Vec<_>>()
        );
        assert_eq!(split.len(), 10);
    }
}
