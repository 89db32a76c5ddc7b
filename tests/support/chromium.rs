//! Drives Debian's headless Chromium through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages separated by NUL bytes on fds 3 and 4), so browser
//! tests need no WebSocket client and no network.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A running headless Chromium.
pub struct Chromium {
    child: Child,
    commands: File,
    messages: Receiver<Value>,
    next_id: u64,
    pub profile: tempfile::TempDir,
}

/// How long any one step may take before the test gives up (never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

impl Chromium {
    /// Starts Chromium with a fresh profile.
    pub fn start() -> Chromium {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's chromium (scripts/setup-debian.sh does)"
        );
        let profile = tempfile::Builder::new().prefix("rgi-chromium-").tempdir().unwrap();
        let (command_reader, commands) = pipe();
        let (replies, reply_writer) = pipe();
        let (cmd_fd, reply_fd) = (command_reader.as_raw_fd(), reply_writer.as_raw_fd());
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--password-store=basic",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Move both ends out of the way first, in case either already is fd 3 or 4.
                let (cmd, reply) = (libc::fcntl(cmd_fd, libc::F_DUPFD, 10), libc::fcntl(reply_fd, libc::F_DUPFD, 10));
                if cmd < 0 || reply < 0 || libc::dup2(cmd, 3) < 0 || libc::dup2(reply, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        drop((command_reader, reply_writer));
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        Chromium { child, commands, messages, next_id: 0, profile }
    }

    /// What Chromium wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    /// Sends a command (to a page when `session` is given) and returns its result.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(reply) if reply["id"] == json!(id) => {
                    if let Some(error) = reply.get("error") {
                        panic!("chromium refused {method}: {error}\n{}", self.log());
                    }
                    return reply["result"].clone();
                }
                Ok(_event) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {method}\n{}", self.log()),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited\n{}", self.log()),
            }
        }
    }

    /// Opens a tab on `url`.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        let session = attached["sessionId"].as_str().expect("sessionId").to_string();
        let page = Page { session };
        self.call(Some(&page.session), "Page.navigate", json!({ "url": url }));
        page
    }

    /// Evaluates `expression` in the page and returns its value.
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until the loaded page's text contains `needle`; returns the text.
    pub fn wait_for_text(&mut self, page: &Page, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut text = String::new();
        while Instant::now() < deadline {
            let state =
                self.eval(page, "document.readyState === 'complete' && document.body ? document.body.innerText : ''");
            text = state.as_str().unwrap_or("").to_string();
            if text.contains(needle) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the page never showed {needle:?}; it shows {text:?}\n{}", self.log());
    }

    /// Types `text` into the focused element, as a user would.
    pub fn type_text(&mut self, page: &Page, text: &str) {
        self.call(Some(&page.session), "Input.insertText", json!({ "text": text }));
    }

    /// Reloads the page.
    pub fn reload(&mut self, page: &Page) {
        self.call(Some(&page.session), "Page.reload", json!({}));
    }

    /// Saves a PNG screenshot of the page.
    pub fn screenshot(&mut self, page: &Page, path: &std::path::Path) {
        let shot = self.call(Some(&page.session), "Page.captureScreenshot", json!({ "format": "png" }));
        std::fs::write(path, base64_decode(shot["data"].as_str().unwrap_or(""))).unwrap();
    }
}

/// A pipe (read end, write end), closed on exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors, which the Files then own.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
    }
}

/// A tab, by its DevTools session.
pub struct Page {
    session: String,
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = n.to_be_bytes();
            bytes[1..c.len()].to_vec()
        })
        .collect()
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.commands.write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
