//! The shim's reaper in a process of its own (it reaps every child, so it cannot share a
//! test binary with tests that wait for their own children).

use std::process::Command;

use nodeless_engine::instance::reaper::Reaper;

#[test]
fn every_waiter_gets_its_own_childs_status_even_when_many_exit_at_once() {
    // Regression: a child reaped while its waiter held the lock was reported as lost (255).
    let reaper = Reaper::start();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let reaper = reaper.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let code = (t * 25 + i) % 7;
                    let status = reaper
                        .status(Command::new("sh").arg("-c").arg(format!("exit {code}")))
                        .expect("spawn");
                    assert_eq!(status, (code, None));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn a_child_killed_by_a_signal_reports_128_plus_the_signal() {
    let reaper = Reaper::start();
    let status = reaper
        .status(Command::new("sh").arg("-c").arg("kill -9 $$"))
        .expect("spawn");
    assert_eq!(status, (137, Some(9)));
}

#[test]
fn a_command_past_its_time_limit_is_killed_and_reported_as_unfinished() {
    let reaper = Reaper::start();
    let started = std::time::Instant::now();
    let status = reaper
        .status_within(
            Command::new("sleep").arg("30"),
            std::time::Duration::from_millis(300),
        )
        .expect("spawn");
    assert_eq!(status, None);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let quick = reaper
        .status_within(
            Command::new("sh").arg("-c").arg("exit 3"),
            std::time::Duration::from_secs(30),
        )
        .expect("spawn");
    assert_eq!(quick, Some((3, None)));
}
