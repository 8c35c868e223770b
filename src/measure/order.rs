//! The seeded orders of the protocol: which environment goes first in a block (balanced
//! over positions), and in which order the tasks take their turns.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Salts that keep the random streams of different uses apart.
const SALT_BLOCK: u64 = 0x6b6c_6f63_6b00_0001;
const SALT_WARMUP: u64 = 0x7761_726d_7570_0002;
const SALT_TASKS: u64 = 0x7461_736b_7300_0003;

fn rng(seed: u64, salt: u64, a: u64, b: u64) -> ChaCha8Rng {
    let mix = |x: u64, y: u64| (x ^ y).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    ChaCha8Rng::seed_from_u64(mix(mix(seed ^ salt, a.wrapping_add(1)), b.wrapping_add(1)))
}

/// The order of the `envs` environments in measured block `block` of task `task`.
///
/// Blocks come in cycles of `envs` blocks. Each cycle draws a random base permutation and
/// uses each of its `envs` rotations once, in a random order: so within every cycle each
/// environment takes each position exactly once (a Latin square), and an effect of the
/// position in a block (a cache warmed by the one before, a frequency step) falls on every
/// environment equally.
pub fn block_order(seed: u64, task: usize, block: u32, envs: usize) -> Vec<usize> {
    order_in_cycle(seed, SALT_BLOCK, task, block, envs)
}

/// The order of the environments in warm-up block `block` of task `task` (balanced the
/// same way, from a stream of its own).
pub fn warmup_order(seed: u64, task: usize, block: u32, envs: usize) -> Vec<usize> {
    order_in_cycle(seed, SALT_WARMUP, task, block, envs)
}

fn order_in_cycle(seed: u64, salt: u64, task: usize, block: u32, envs: usize) -> Vec<usize> {
    if envs == 0 {
        return Vec::new();
    }
    let k = envs as u32;
    let (cycle, pos) = (block / k, (block % k) as usize);
    let mut r = rng(seed, salt, task as u64, u64::from(cycle));
    let mut base: Vec<usize> = (0..envs).collect();
    base.shuffle(&mut r);
    let mut rotations: Vec<usize> = (0..envs).collect();
    rotations.shuffle(&mut r);
    let shift = rotations[pos];
    (0..envs).map(|i| base[(i + shift) % envs]).collect()
}

/// The order in which `tasks` tasks take their turn in pass `pass` of a fixed design (and
/// of the budget design's first passes): every task once, seeded.
pub fn task_order(seed: u64, pass: u32, tasks: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks).collect();
    order.shuffle(&mut rng(seed, SALT_TASKS, u64::from(pass), 0));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_environment_takes_every_position_once_per_cycle() {
        for envs in 1..=6 {
            for cycle in 0..5u32 {
                let mut seen = vec![vec![0; envs]; envs]; // [env][position]
                for pos in 0..envs as u32 {
                    let order = block_order(11, 3, cycle * envs as u32 + pos, envs);
                    let mut sorted = order.clone();
                    sorted.sort();
                    assert_eq!(sorted, (0..envs).collect::<Vec<_>>(), "a permutation");
                    for (p, e) in order.iter().enumerate() {
                        seen[*e][p] += 1;
                    }
                }
                assert!(seen.iter().flatten().all(|&n| n == 1), "{seen:?}");
            }
        }
    }

    #[test]
    fn orders_are_seeded() {
        assert_eq!(block_order(1, 0, 9, 4), block_order(1, 0, 9, 4));
        let differs = (0..20).any(|b| block_order(1, 0, b, 4) != block_order(2, 0, b, 4));
        assert!(differs, "the seed changes the orders");
        assert_eq!(task_order(5, 2, 7), task_order(5, 2, 7));
        let mut t = task_order(5, 2, 7);
        t.sort();
        assert_eq!(t, (0..7).collect::<Vec<_>>());
    }
}
