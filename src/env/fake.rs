//! A fake environment for tests of the plan, the measurement loop, the statistics and the
//! reports: it runs nothing and returns values from a caller-supplied function.

use std::collections::BTreeMap;

use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};

/// Produces the result of one invocation from (invocation number, invocation).
pub type FakeFn = Box<dyn FnMut(u64, &Invocation) -> Result<RawRun, EnvError>>;

pub struct Fake {
    label: String,
    kind: EnvKind,
    calls: u64,
    started: bool,
    produce: FakeFn,
    /// Start-up time to report, in cycles.
    pub start_cycles: u64,
}

impl Fake {
    pub fn new(label: &str, kind: EnvKind, produce: FakeFn) -> Fake {
        Fake {
            label: label.into(),
            kind,
            calls: 0,
            started: false,
            produce,
            start_cycles: 1000,
        }
    }
}

impl Environment for Fake {
    fn label(&self) -> &str {
        &self.label
    }
    fn kind(&self) -> EnvKind {
        self.kind
    }
    fn start(&mut self, _spec: &InstanceSpec) -> Result<(), EnvError> {
        self.started = true;
        Ok(())
    }
    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        if !self.started {
            return Err(EnvError::setup(
                &self.label,
                "invoking a workload",
                "the environment was not started",
            ));
        }
        self.calls += 1;
        (self.produce)(self.calls, inv)
    }
    fn measure_start(&mut self, _spec: &InstanceSpec) -> Result<u64, EnvError> {
        Ok(self.start_cycles)
    }
    fn facts(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("fake".to_string(), "yes".to_string())])
    }
    fn stop(&mut self) -> Result<(), EnvError> {
        self.started = false;
        Ok(())
    }
}
