//! The Unix signals the program answers: SIGHUP reloads, SIGTERM and SIGINT
//! stop (a second one stops at once).
//!
//! The commands never read signals directly from the OS in their logic: the
//! daemon loop reads [`SignalEvent`]s from a channel that [`Signals::forward`]
//! feeds, so its tests can send the same events by hand.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEvent {
    /// SIGHUP: read the config again.
    Reload,
    /// SIGTERM or SIGINT (named): stop; a second one stops at once.
    Stop(&'static str),
}

/// The installed handlers. Registering them replaces the default actions
/// (SIGHUP's would kill the process), so a command does this first.
pub(crate) struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn register() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT; a SIGHUP meanwhile is logged and ignored.
    pub(crate) async fn next_stop(&mut self) {
        while let SignalEvent::Reload = self.next().await {
            tracing::info!("SIGHUP ignored: nothing to reload now");
        }
    }

    /// The next signal, whichever it is.
    pub(crate) async fn next(&mut self) -> SignalEvent {
        tokio::select! {
            _ = self.hangup.recv() => SignalEvent::Reload,
            _ = self.terminate.recv() => SignalEvent::Stop("SIGTERM"),
            _ = self.interrupt.recv() => SignalEvent::Stop("SIGINT"),
        }
    }

    /// Sends every signal, as it comes, into a channel (from a task that
    /// ends when the receiver is dropped).
    pub(crate) fn forward(mut self) -> mpsc::Receiver<SignalEvent> {
        let (sender, receiver) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let event = self.next().await;
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        });
        receiver
    }
}
