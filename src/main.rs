use isobench::env::{native::Native, Environment, InstanceSpec, Invocation};
fn main() {
    let mut n = Native::new("native");
    let spec = InstanceSpec {
        work_size: 1 << 20,
        disk_size: 0,
        scratch: "/tmp".into(),
        deadline: std::time::Duration::from_secs(5),
    };
    n.start(&spec).unwrap();
    let hz = isobench::tsc::calibrate(std::time::Duration::from_millis(20));
    for _ in 0..3 {
        let r = n
            .invoke(&Invocation {
                name: "cpu.int",
                workload: 1,
                params: [16384, 10000, 7, 0, 0, 0, 0, 0],
                flags: 0,
            })
            .unwrap();
        println!(
            "{:x} {} cycles {} ms wall {}",
            r.checksum,
            r.cycles,
            r.cycles as f64 / hz * 1e3,
            r.wall_ns
        );
    }
    println!(
        "start {} us",
        n.measure_start(&spec).unwrap() as f64 / hz * 1e6
    );
    println!(
        "{:?}",
        n.invoke(&Invocation {
            name: "test.fault",
            workload: 100,
            params: [0; 8],
            flags: 0
        })
    );
}
