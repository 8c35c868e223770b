//! The deadline watchdog: a thread that, once an armed deadline passes, kicks the vCPU
//! thread out of `KVM_RUN` with a signal (a no-op handler, so `KVM_RUN` returns `EINTR`),
//! and keeps kicking every few milliseconds until the vCPU thread disarms it. Re-kicking
//! closes the race of a signal that lands just before the thread enters `KVM_RUN`
//! (docs/KVM.md, "Exits and failures").
//!
//! When the vm is pinned (`InstanceSpec::cpu`), the watchdog thread keeps off that CPU: its
//! idle ticks and kicks must not preempt the vCPU thread there.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often an expired deadline re-kicks the vCPU thread.
const REKICK: Duration = Duration::from_millis(5);
/// How often an idle (disarmed) watchdog wakes on its own.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// The signal used to kick a vCPU thread (a real-time signal nothing else here uses).
fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn on_kick(_: libc::c_int) {}

fn install_handler() -> Result<(), std::io::Error> {
    static ONCE: Once = Once::new();
    static RESULT: AtomicI32 = AtomicI32::new(0);
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
        // an async-signal-safe no-op; no SA_RESTART, so KVM_RUN returns EINTR.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut())
        };
        if r != 0 {
            RESULT.store(nix::Error::last() as i32, Ordering::SeqCst);
        }
    });
    match RESULT.load(Ordering::SeqCst) {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

struct Armed {
    deadline: Instant,
    thread: libc::pthread_t,
}

#[derive(Default)]
struct State {
    armed: Option<Armed>,
    quit: bool,
    /// When the watchdog thread next looks at `armed` on its own (None: it is awake now).
    /// Arming wakes it only when the new deadline is earlier, so the common arm is a lock
    /// and a store, not a thread wake-up (which costs ≈12 µs here).
    wake_at: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    expired: AtomicBool,
    /// The watchdog thread's id, once it runs (0 before).
    tid: AtomicI32,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One watchdog per VM instance.
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Start the watchdog thread; with `avoid`, it runs anywhere the creating thread may
    /// except on that CPU (unless that CPU is the only one allowed).
    pub fn new(avoid: Option<usize>) -> Result<Watchdog, std::io::Error> {
        install_handler()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            expired: AtomicBool::new(false),
            tid: AtomicI32::new(0),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("isobench-vm-watchdog".into())
            .spawn(move || {
                // The thread inherited its creator's affinity; drop the vCPU's CPU from it.
                if let Some(cpu) = avoid {
                    let _ = crate::env::affinity::avoid_on_current_thread(cpu);
                }
                s.tid
                    .store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
                watch(&s)
            })?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    /// Arm for the calling thread (the vCPU thread) until the returned guard is dropped.
    pub fn arm(&self, timeout: Duration) -> ArmGuard<'_> {
        // Make sure the kick can reach us even if the caller blocks signals.
        // SAFETY: sigset operations on a local; pthread_sigmask only affects this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, kick_signal());
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        self.shared.expired.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        st.armed = Some(Armed {
            deadline,
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
        });
        if st.wake_at.is_none_or(|w| w > deadline) {
            self.shared.cv.notify_all();
        }
        ArmGuard { dog: self }
    }

    /// Whether the armed deadline has passed.
    pub fn expired(&self) -> bool {
        self.shared.expired.load(Ordering::SeqCst)
    }

    /// The watchdog thread's id (0 until it has started).
    pub fn tid(&self) -> i32 {
        self.shared.tid.load(Ordering::SeqCst)
    }
}

/// Disarms the watchdog when dropped; after that no kick is sent to the thread.
pub struct ArmGuard<'a> {
    dog: &'a Watchdog,
}

impl Drop for ArmGuard<'_> {
    fn drop(&mut self) {
        lock(&self.dog.shared.state).armed = None;
    }
}

fn watch(s: &Shared) {
    let mut st = lock(&s.state);
    loop {
        if st.quit {
            return;
        }
        let wait = match &st.armed {
            None => IDLE_TICK,
            Some(a) => {
                let now = Instant::now();
                if now >= a.deadline {
                    s.expired.store(true, Ordering::SeqCst);
                    // SAFETY: the target thread is alive: it is inside `invoke` until it has
                    // dropped its ArmGuard, which needs this lock, which we hold.
                    unsafe { libc::pthread_kill(a.thread, kick_signal()) };
                    REKICK
                } else {
                    a.deadline - now
                }
            }
        };
        st.wake_at = Some(Instant::now() + wait);
        st =
            s.cv.wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        st.wake_at = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.state);
            st.quit = true;
            st.armed = None;
            self.shared.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kicks_a_blocking_syscall_after_the_deadline_and_not_before() {
        let dog = Watchdog::new(None).unwrap();
        let t0 = Instant::now();
        {
            let _g = dog.arm(Duration::from_millis(50));
            // A blocking read on a pipe nobody writes: only the kick ends it (EINTR).
            let (r, _w) = nix::unistd::pipe().unwrap();
            let mut b = [0u8; 1];
            let e = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut b);
            assert_eq!(e, Err(nix::Error::EINTR));
            assert!(dog.expired());
        }
        let dt = t0.elapsed();
        assert!(dt >= Duration::from_millis(50), "{dt:?}");
        let _g = dog.arm(Duration::from_secs(60));
        assert!(!dog.expired());
    }
}
