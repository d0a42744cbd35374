//! Ownership of spawned tasks: a task lives as long as its handle's owner.

use tokio::task::JoinHandle;

/// Aborts the task when dropped.
pub struct AbortOnDrop<T = ()>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
