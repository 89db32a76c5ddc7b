//! Instructions per request, from callgrind over `apache2 -X` (or, for daemon mode, over the whole
//! server and its daemon processes): two runs of N1 and N2 requests, whose difference
//! ÷ (N2 − N1) cancels start-up and shutdown.

use std::io;
use std::path::Path;

use crate::client::Connection;
use crate::servers::{Mode, Peer, Server, Setup};

/// Instructions executed by a whole `apache2 -X` run serving `count` GETs of `path`; a run that
/// fails is tried again (twice), as the machine is shared and a start can be cut short.
fn total(peer: Peer, setup: &Setup, root: &Path, path: &str, count: u64) -> io::Result<u64> {
    let mut result = run_once(peer, setup, root, path, count);
    for _retry in 0..2 {
        match &result {
            Err(why) => eprintln!("  callgrind run failed ({why}); trying again"),
            Ok(_) => break,
        }
        result = run_once(peer, setup, root, path, count);
    }
    result
}

fn run_once(peer: Peer, setup: &Setup, root: &Path, path: &str, count: u64) -> io::Result<u64> {
    // Daemon mode needs Apache's parent (it starts the daemons): the whole tree is counted.
    let mode = if peer.is_daemon() { Mode::CallgrindTree } else { Mode::Callgrind };
    let mut server = Server::start(peer, setup, root, mode)?;
    {
        let mut conn = Connection::open(server.port)?;
        for _ in 0..count {
            let response = conn.request("GET", path, b"")?;
            if response.status != 200 {
                return Err(io::Error::other(format!("{} {path} answered {}", peer.name(), response.status)));
            }
        }
    }
    server.stop();
    let mut sum = 0;
    for file in std::fs::read_dir(root.join("callgrind"))? {
        let out = std::fs::read_to_string(file?.path())?;
        sum += out
            .lines()
            .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other("no totals in callgrind's output"))?;
    }
    Ok(sum)
}

/// Instructions per request of `peer` for `path`.
pub fn per_request(peer: Peer, setup: &Setup, path: &str, n1: u64, n2: u64) -> io::Result<f64> {
    let root = setup.work.join(format!("callgrind-{}{}", peer.dir(), path.replace('/', "-")));
    let small = total(peer, setup, &root, path, n1)?;
    let large = total(peer, setup, &root, path, n2)?;
    Ok(large.saturating_sub(small) as f64 / (n2 - n1) as f64)
}
