//! Prompt clusters of a route, for the learned policy: spherical k-means (cosine) over the
//! route's example embeddings, seeded (k-means++ from a fixed seed), so the same examples always
//! give the same clusters. A prompt's cluster is its nearest centroid.
//!
//! Feedback is kept per cluster, and the audit records a prompt's cluster with the clustering's
//! fingerprint ([`Clusters::id`]): when the examples change, so do the clusters, and the
//! feedback of the old ones no longer counts towards the new ones.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::usecase::dot;

const SEED: u64 = 0x5eed_c105;
const ITERATIONS: usize = 25;

#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    dims: usize,
    /// `k` unit vectors, back to back.
    centroids: Vec<f32>,
    id: u32,
}

impl Clusters {
    /// At most `k` clusters of `vectors` (`dims` floats each; fewer clusters when there are
    /// fewer distinct vectors). With no vectors, one cluster that takes every prompt.
    pub fn fit(vectors: &[f32], dims: usize, k: usize) -> Clusters {
        let n = vectors.len() / dims.max(1);
        let k = k.clamp(1, n.max(1));
        if n == 0 {
            return Clusters::single(dims);
        }
        let point = |i: usize| &vectors[i * dims..(i + 1) * dims];
        let mut rng = StdRng::seed_from_u64(SEED);
        // k-means++: each next seed drawn with probability ~ its distance to the nearest seed.
        let mut seeds = vec![rng.random_range(0..n)];
        let mut dist: Vec<f32> = (0..n)
            .map(|i| 1.0 - dot(point(i), point(seeds[0])))
            .collect();
        while seeds.len() < k {
            let total: f32 = dist.iter().map(|d| d.max(0.0)).sum();
            if total <= 1e-6 {
                break; // every point sits on a seed
            }
            let mut pick = rng.random::<f32>() * total;
            let mut next = n - 1;
            for (i, d) in dist.iter().enumerate() {
                pick -= d.max(0.0);
                if pick <= 0.0 {
                    next = i;
                    break;
                }
            }
            seeds.push(next);
            for (i, d) in dist.iter_mut().enumerate() {
                *d = d.min(1.0 - dot(point(i), point(next)));
            }
        }
        let mut centroids: Vec<f32> = seeds.iter().flat_map(|&s| point(s).to_vec()).collect();
        let k = seeds.len();
        let mut assign = vec![0usize; n];
        for _ in 0..ITERATIONS {
            let mut changed = false;
            for (i, a) in assign.iter_mut().enumerate() {
                let best = nearest(&centroids, dims, point(i));
                changed |= best != *a;
                *a = best;
            }
            let mut sums = vec![0f32; k * dims];
            for (i, &a) in assign.iter().enumerate() {
                for (s, x) in sums[a * dims..(a + 1) * dims].iter_mut().zip(point(i)) {
                    *s += x;
                }
            }
            for c in 0..k {
                let s = &mut sums[c * dims..(c + 1) * dims];
                let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    s.iter_mut().for_each(|x| *x /= norm);
                    centroids[c * dims..(c + 1) * dims].copy_from_slice(s);
                }
            }
            if !changed {
                break;
            }
        }
        let id = fingerprint(&centroids);
        Clusters {
            dims,
            centroids,
            id,
        }
    }

    fn single(dims: usize) -> Clusters {
        Clusters {
            dims,
            centroids: vec![0.0; dims],
            id: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.centroids.len() / self.dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fingerprint of the centroids: feedback recorded under another id is not theirs.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The cluster of `v` (0 when `v` has the wrong size).
    pub fn assign(&self, v: &[f32]) -> usize {
        if v.len() != self.dims {
            return 0;
        }
        nearest(&self.centroids, self.dims, v)
    }
}

fn nearest(centroids: &[f32], dims: usize, v: &[f32]) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (c, cen) in centroids.chunks_exact(dims).enumerate() {
        let s = dot(cen, v);
        if s > best.1 {
            best = (c, s);
        }
    }
    best.0
}

fn fingerprint(centroids: &[f32]) -> u32 {
    let mut h = Sha256::new();
    for x in centroids {
        h.update(x.to_le_bytes());
    }
    let d = h.finalize();
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_clear_groups_deterministically() {
        let unit = |a: f32| [a.cos(), a.sin()];
        let mut v = Vec::new();
        for i in 0..10 {
            v.extend(unit(0.05 * i as f32)); // around 0
            v.extend(unit(1.5 + 0.01 * i as f32)); // around pi/2
        }
        let c = Clusters::fit(&v, 2, 2);
        assert_eq!(c.len(), 2);
        assert_ne!(c.assign(&unit(0.1)), c.assign(&unit(1.55)));
        assert_eq!(c, Clusters::fit(&v, 2, 2), "seeded");
        assert_eq!(Clusters::fit(&v, 2, 50).len(), 20, "at most one per point");
        let none = Clusters::fit(&[], 2, 4);
        assert_eq!((none.len(), none.assign(&unit(0.3))), (1, 0));
        assert_eq!(c.assign(&[1.0]), 0, "wrong size");
    }
}
