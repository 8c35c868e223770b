//! The hostile guest (docs/RELIABILITY.md): random hostcall requests against the real
//! doorbell decoder, request decoder and handlers (real guest memory of a real machine, a real
//! disk file), and guests made of random code bytes run at CPL 3 on real KVM. Both replay the
//! corpus in `tests/corpus/` first. Needs read-write /dev/kvm, like the other vm tests.
//!
//! `ISOBENCH_HOSTCALL_FUZZ=N` sets the number of requests (default 1 000 000),
//! `ISOBENCH_GUEST_FUZZ=N` the number of random guests (default 300), `ISOBENCH_FUZZ_SEED`
//! the seed (default 16). Each test prints a `hostile:` line with its figures.

use std::fs::File;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::hostcall::{decode_doorbell, decode_request, serve, Hostcall, STATUS_OFFSET};
use super::*;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn host() -> HostKvm {
    HostKvm::open().unwrap_or_else(|e| panic!("these tests need KVM: {e}"))
}

/// The corpus entries under `tests/corpus/<kind>/`: hex bytes, `#` starts a comment.
fn corpus(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "empty corpus {}", dir.display());
    entries
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let hex: String = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .collect::<String>()
                .split_whitespace()
                .collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .unwrap_or_else(|e| panic!("{}: not hex: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// A disk file of `size` bytes and a canary file beside it, in a fresh directory on tmpfs
/// (`/dev/shm`, so that the fuzzed `HC_DISK_FLUSH` costs no real fsync).
struct DiskPair {
    _dir: tempfile::TempDir,
    disk: File,
    size: u64,
    canary_path: PathBuf,
    canary: Vec<u8>,
}

impl DiskPair {
    fn new(size: u64, rng: &mut ChaCha8Rng) -> DiskPair {
        let dir = tempfile::tempdir_in("/dev/shm")
            .unwrap_or_else(|e| panic!("these tests need a writable /dev/shm: {e}"));
        let disk = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("disk"))
            .unwrap();
        disk.set_len(size).unwrap();
        let canary: Vec<u8> = (0..4096).map(|_| rng.gen()).collect();
        let canary_path = dir.path().join("canary");
        std::fs::write(&canary_path, &canary).unwrap();
        DiskPair {
            _dir: dir,
            disk,
            size,
            canary_path,
            canary,
        }
    }

    /// The guest wrote only inside its disk: same length, and the file beside it unchanged.
    fn check(&self, what: &str) {
        assert_eq!(
            self.disk.metadata().unwrap().len(),
            self.size,
            "{what}: the disk file changed size"
        );
        assert_eq!(
            std::fs::read(&self.canary_path).unwrap(),
            self.canary,
            "{what}: a file beside the disk changed"
        );
    }
}

/// Guest memory a hostcall may never write: low memory outside the user region (GDT, IDT,
/// TSS, fault stubs, page tables).
fn protected(mem: &GuestMemory) -> Vec<u8> {
    let mut below = vec![0u8; layout::USER_LOW_START as usize];
    mem.read(0, &mut below).unwrap();
    let mut above = vec![0u8; (LOW_END - layout::USER_LOW_END) as usize];
    mem.read(layout::USER_LOW_END, &mut above).unwrap();
    below.extend_from_slice(&above);
    below
}

/// A value near one of the interesting edges, or anything.
fn edgy(rng: &mut ChaCha8Rng, edges: &[u64]) -> u64 {
    match rng.gen_range(0..10) {
        0..=5 => {
            let e = edges[rng.gen_range(0..edges.len())];
            e.wrapping_add(rng.gen_range(0..=16u64))
                .wrapping_sub(rng.gen_range(0..=16u64))
        }
        6 => rng.gen_range(0..=8192u64),
        7 => u64::MAX - rng.gen_range(0..=4096u64),
        _ => rng.gen(),
    }
}

/// One request: fully random bytes, or the right version with edge-biased fields.
fn random_request(rng: &mut ChaCha8Rng, b: &GuestBounds) -> [u8; HOSTCALL_REQUEST_SIZE] {
    let mut req = [0u8; HOSTCALL_REQUEST_SIZE];
    rng.fill(&mut req[..]);
    if rng.gen_range(0..4) == 0 {
        return req;
    }
    let edges = [
        0,
        b.user_low.0,
        b.user_low.1,
        b.work.0,
        b.work.1,
        b.disk_size,
        b.work.1 - b.work.0,
        b.user_low.1 - b.user_low.0,
        HOSTCALL_ADDR,
        u64::MAX,
    ];
    let version = if rng.gen_range(0..20) == 0 {
        rng.gen()
    } else {
        HOSTCALL_VERSION
    };
    let reserved: u32 = if rng.gen_range(0..20) == 0 {
        rng.gen()
    } else {
        0
    };
    let op: u16 = if rng.gen_range(0..20) == 0 {
        rng.gen()
    } else {
        rng.gen_range(0..HC_OP_COUNT + 1)
    };
    req[0..2].copy_from_slice(&version.to_le_bytes());
    req[2..4].copy_from_slice(&op.to_le_bytes());
    req[4..8].copy_from_slice(&reserved.to_le_bytes());
    for i in 0..4 {
        let v = edgy(rng, &edges);
        req[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    req
}

/// Every buffer a decoded request names lies inside the bounds (no overflow).
fn assert_inside(call: &Hostcall, b: &GuestBounds) {
    let inside = |a: u64, l: u64, (s, e): (u64, u64)| a >= s && a <= e && l <= e - a;
    match *call {
        Hostcall::DiskRead { offset, buf } | Hostcall::DiskWrite { offset, buf } => {
            assert!(inside(buf.addr, buf.len, b.user_low) || inside(buf.addr, buf.len, b.work));
            assert!(inside(offset, buf.len, (0, b.disk_size)));
        }
        Hostcall::Discard(r) => assert!(inside(r.addr, r.len, b.work)),
        _ => {}
    }
}

#[test]
fn a_million_random_hostcall_requests_are_served_or_refused_within_bounds() {
    let n = env_u64("ISOBENCH_HOSTCALL_FUZZ", 1_000_000);
    let seed = env_u64("ISOBENCH_FUZZ_SEED", 16);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let host = host();
    let disk_size = 1 << 20;
    let m = Machine::new(&host, VmOptions::default(), 4 << 20, disk_size, 1).unwrap();
    let disk = DiskPair::new(disk_size, &mut rng);
    let before = protected(&m.mem);
    let b = m.bounds;
    let corpus = corpus("hostcalls");
    let (mut served, mut refused, mut bad_doorbells) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    for i in 0..n + corpus.len() as u64 {
        let req: [u8; HOSTCALL_REQUEST_SIZE] = match corpus.get(i as usize) {
            Some((path, bytes)) => bytes
                .as_slice()
                .try_into()
                .unwrap_or_else(|_| panic!("{}: a request is 48 bytes", path.display())),
            None => random_request(&mut rng, &b),
        };
        // The doorbell: usually the hostcall page, sometimes anywhere, sometimes a bad size.
        let addr: u32 = match rng.gen_range(0..8) {
            0 => rng.gen(),
            1 => (edgy(&mut rng, &[b.user_low.0, b.user_low.1, 0]) as u32) & !7,
            _ => HOSTCALL_ADDR as u32,
        };
        let data = addr.to_le_bytes();
        let data: &[u8] = if rng.gen_range(0..50) == 0 {
            &data[..rng.gen_range(0..4)]
        } else {
            &data
        };
        let port = if rng.gen_range(0..50) == 0 {
            rng.gen()
        } else {
            HOSTCALL_PORT
        };
        let Ok(req_addr) = decode_doorbell(port, data, &b) else {
            bad_doorbells += 1;
            continue;
        };
        // As in the vCPU loop: the guest's request is read from guest memory, decoded, served,
        // and its status written back.
        m.mem.write(req_addr, &req).unwrap();
        let mut read = [0u8; HOSTCALL_REQUEST_SIZE];
        m.mem.read(req_addr, &mut read).unwrap();
        let status = match decode_request(&read, &b) {
            Ok(call) => {
                assert_inside(&call, &b);
                served += 1;
                let s = serve(&call, &m.mem, Some(&disk.disk));
                if let Hostcall::DiskRead { buf, .. } | Hostcall::DiskWrite { buf, .. } = call {
                    assert!(s <= buf.len as i64, "transferred more than asked: {call:?}");
                }
                assert!(s >= -4095, "status {s} of {call:?} is not an errno");
                s
            }
            Err(e) => {
                refused += 1;
                e.status().unwrap_or(-HC_ERR_IO)
            }
        };
        m.mem
            .write_u64(req_addr + STATUS_OFFSET, status as u64)
            .unwrap();
        if i % 100_000 == 0 {
            disk.check(&format!("request {i}"));
            assert!(
                protected(&m.mem) == before,
                "request {i}: protected memory changed"
            );
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    disk.check("the end");
    assert!(
        protected(&m.mem) == before,
        "protected guest memory changed"
    );
    let total = n + corpus.len() as u64;
    println!(
        "hostile: {total} hostcall requests ({} from the corpus) in {secs:.2} s = {:.0} per second; served {served}, refused {refused}, bad doorbells {bad_doorbells}; no write outside the guest's memory and disk",
        corpus.len(),
        total as f64 / secs
    );
    assert!(
        served > n / 10 && refused > n / 10,
        "the generator reaches both paths"
    );
}

/// How a random guest ended.
fn outcome(r: &Result<(), RunFailure>) -> &'static str {
    match r {
        Ok(()) => "done",
        Err(RunFailure::Deadline) => "runaway (deadline)",
        Err(RunFailure::Kvm(_)) => "KVM_RUN error",
        Err(RunFailure::Crashed(d)) if d.contains("triple fault") => "triple fault",
        Err(RunFailure::Crashed(d)) if d.contains('#') => "exception",
        Err(RunFailure::Crashed(_)) => "refused exit",
    }
}

#[test]
fn guests_of_random_code_at_cpl3_are_each_ended_with_a_clear_error() {
    let n = env_u64("ISOBENCH_GUEST_FUZZ", 300);
    let seed = env_u64("ISOBENCH_FUZZ_SEED", 16);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let host = host();
    let dog = Watchdog::new(None).unwrap();
    let deadline = Duration::from_millis(200);
    let disk_size = 64 << 10;
    let corpus = corpus("guests");
    let mut tally: BTreeMap<&'static str, u32> = BTreeMap::new();
    let t0 = Instant::now();
    for i in 0..n + corpus.len() as u64 {
        let (name, code) = match corpus.get(i as usize) {
            Some((p, bytes)) => (p.display().to_string(), bytes.clone()),
            None => {
                let len = rng.gen_range(1..=512);
                let code: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                (format!("random guest {i}"), code)
            }
        };
        let disk = DiskPair::new(disk_size, &mut rng);
        let mut m = Machine::new(&host, VmOptions::default(), 64 << 10, disk_size, 1).unwrap();
        m.mem.write(IMAGE_BASE, &code).unwrap();
        let cb = control_block(WL_START, [0; PARAM_COUNT], 0, (WORK_BASE, 64 << 10));
        let started = Instant::now();
        let r = m.run(&cb, Some(&disk.disk), &dog, deadline).unwrap();
        let took = started.elapsed();
        assert!(
            took < deadline + Duration::from_secs(2),
            "{name}: took {took:?} to end"
        );
        if let Err(RunFailure::Crashed(d)) = &r {
            assert!(
                d.contains("RIP"),
                "{name}: the error names the guest's RIP: {d}"
            );
        }
        disk.check(&name);
        *tally.entry(outcome(&r)).or_default() += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "hostile: {} guests ({} from the corpus) of random code at CPL 3 in {secs:.1} s, each ended by the VMM: {tally:?}",
        n + corpus.len() as u64,
        corpus.len()
    );
    assert_eq!(
        tally.get("KVM_RUN error"),
        None,
        "KVM_RUN failed: {tally:?}"
    );
}
