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
