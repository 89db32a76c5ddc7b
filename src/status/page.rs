//! The `rgi-status` handler: the shared table as an HTML page or in Prometheus' text format.

use std::ffi::c_int;
use std::fmt::Write as _;

use super::{BUCKETS_US, DaemonSnapshot, GroupSnapshot, daemons, groups, now_unix};
use crate::ffi::{self, sys};

/// The handler name (`SetHandler rgi-status`).
pub const HANDLER: &[u8] = b"rgi-status";

/// The handler hook: answers `SetHandler rgi-status` requests.
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe extern "C" fn handler(r: *mut sys::request_rec) -> c_int {
    ffi::guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache passes a live request; its strings are NUL-terminated.
        unsafe {
            if ffi::bytes((*r).handler) != Some(HANDLER) {
                return sys::DECLINED;
            }
            if (*r).method_number != sys::M_GET as c_int {
                return sys::HTTP_METHOD_NOT_ALLOWED;
            }
            let query = ffi::bytes((*r).args).unwrap_or_default();
            let prometheus = query.split(|&b| b == b'&').any(|p| p == b"format=prometheus");
            let (body, content_type) = if prometheus {
                (prometheus_text(&groups(), &daemons()), c"text/plain; version=0.0.4; charset=utf-8")
            } else {
                (html(&groups(), &daemons(), now_unix()), c"text/html; charset=utf-8")
            };
            sys::ap_set_content_type(r, content_type.as_ptr());
            sys::apr_table_setn((*r).headers_out, c"Cache-Control".as_ptr(), c"no-store".as_ptr());
            sys::ap_set_content_length(r, body.len() as sys::apr_off_t);
            if (*r).header_only == 0 {
                sys::ap_rwrite(body.as_ptr().cast(), body.len() as c_int, r);
            }
            sys::OK
        }
    })
}

fn ms(us: Option<f64>) -> String {
    us.map_or("-".into(), |us| format!("{:.1}", us / 1000.0))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn group_label(name: &str, embedded: &str) -> String {
    if name.is_empty() { embedded.to_string() } else { escape_html(name) }
}

/// The HTML page.
pub fn html(groups: &[GroupSnapshot], daemons: &[DaemonSnapshot], now: u64) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>RGI status</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{padding:2px 8px;\
         border-bottom:1px solid #ccc;text-align:right}td:first-child,td:nth-child(2),th{text-align:left}</style>\
         </head><body>\n<h1>RGI status</h1>\n<h2>Application groups</h2>\n<table>\n\
         <tr><th>process group</th><th>application group</th><th>requests</th><th>in flight</th>\
         <th>5xx</th><th>panics</th><th>mean ms</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th></tr>\n",
    );
    for g in groups {
        let mean = (g.requests > 0).then(|| g.latency_sum_us as f64 / g.requests as f64);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            group_label(&g.process_group, "(embedded)"),
            group_label(&g.application_group, "%{GLOBAL}"),
            g.requests,
            g.in_flight,
            g.errors,
            g.panics,
            ms(mean),
            ms(g.quantile_us(0.5)),
            ms(g.quantile_us(0.9)),
            ms(g.quantile_us(0.99)),
        );
    }
    page.push_str("</table>\n<h2>Daemon processes</h2>\n");
    if daemons.is_empty() {
        page.push_str("<p>none</p>\n");
    } else {
        page.push_str(
            "<table>\n<tr><th>process group</th><th>pid</th><th>uptime s</th><th>requests</th>\
             <th>connections</th><th>memory MiB</th><th>CPU s</th><th>restarts</th><th>last restart reason</th></tr>\n",
        );
        for d in daemons {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape_html(&d.group),
                d.pid,
                now.saturating_sub(d.started),
                d.requests,
                d.connections,
                d.resident_bytes.map_or("–".into(), |b| format!("{:.1}", b as f64 / (1 << 20) as f64)),
                d.cpu_seconds.map_or("–".into(), |s| format!("{s:.2}")),
                d.restarts,
                escape_html(&d.last_restart_reason),
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// A metric: name, type, help text and its value for one row.
type Metric<T, V> = (&'static str, &'static str, &'static str, fn(&T) -> V);

/// A label value in Prometheus' text format.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Prometheus' text exposition format (version 0.0.4).
pub fn prometheus_text(groups: &[GroupSnapshot], daemons: &[DaemonSnapshot]) -> String {
    let mut out = String::new();
    let labels = |g: &GroupSnapshot| {
        format!("process_group=\"{}\",application_group=\"{}\"", label(&g.process_group), label(&g.application_group))
    };
    let counters: [Metric<GroupSnapshot, i128>; 4] = [
        ("rgi_requests_total", "counter", "Requests served by RGI apps.", |g| g.requests.into()),
        ("rgi_requests_in_flight", "gauge", "Requests being served now.", |g| g.in_flight.into()),
        ("rgi_responses_5xx_total", "counter", "Responses with a 5xx status.", |g| g.errors.into()),
        ("rgi_panics_total", "counter", "Requests whose app panicked.", |g| g.panics.into()),
    ];
    for (name, kind, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for g in groups {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(g), value(g));
        }
    }
    let name = "rgi_request_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Time RGI apps took to serve requests.\n# TYPE {name} histogram");
    for g in groups {
        let labels = labels(g);
        let mut cumulative = 0;
        for (i, n) in g.latency.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS_US.get(i).map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", g.latency_sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
    let daemon_metrics: [Metric<DaemonSnapshot, Option<f64>>; 6] = [
        ("rgi_daemon_process_start_time_seconds", "gauge", "Start time of the daemon process.", |d| {
            Some(d.started as f64)
        }),
        ("rgi_daemon_process_requests_total", "counter", "Requests the daemon process served.", |d| {
            Some(d.requests as f64)
        }),
        (
            "rgi_daemon_process_connections_total",
            "counter",
            "Connections from Apache's children the daemon process accepted (each carries many requests).",
            |d| Some(d.connections as f64),
        ),
        ("rgi_daemon_process_resident_memory_bytes", "gauge", "Resident memory of the daemon process.", |d| {
            d.resident_bytes.map(|b| b as f64)
        }),
        ("rgi_daemon_process_cpu_seconds_total", "counter", "CPU time the daemon process used.", |d| d.cpu_seconds),
        ("rgi_daemon_process_restarts_total", "counter", "Daemon processes replaced in this slot.", |d| {
            Some(d.restarts as f64)
        }),
    ];
    for (name, kind, help, value) in daemon_metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for d in daemons {
            let Some(value) = value(d) else { continue };
            let _ = writeln!(
                out,
                "{name}{{process_group=\"{}\",pid=\"{}\",last_restart_reason=\"{}\"}} {}",
                label(&d.group),
                d.pid,
                label(&d.last_restart_reason),
                value
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupSnapshot {
        let mut latency = vec![0; BUCKETS_US.len() + 1];
        latency[0] = 3;
        latency[2] = 1;
        GroupSnapshot {
            process_group: String::new(),
            application_group: "a\"b".into(),
            requests: 4,
            in_flight: 1,
            errors: 2,
            panics: 1,
            latency_sum_us: 900,
            latency,
        }
    }

    #[test]
    fn prometheus_histogram_is_cumulative_with_escaped_labels() {
        let text = prometheus_text(&[group()], &[]);
        let labels = r#"process_group="",application_group="a\"b""#;
        assert!(text.contains(&format!("rgi_requests_total{{{labels}}} 4\n")), "{text}");
        assert!(text.contains(&format!("rgi_responses_5xx_total{{{labels}}} 2\n")));
        assert!(text.contains(&format!("rgi_request_duration_seconds_bucket{{{labels},le=\"0.0001\"}} 3\n")));
        assert!(text.contains(&format!("rgi_request_duration_seconds_bucket{{{labels},le=\"0.00025\"}} 3\n")));
        assert!(text.contains(&format!("rgi_request_duration_seconds_bucket{{{labels},le=\"0.0005\"}} 4\n")));
        assert!(text.contains(&format!("rgi_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 4\n")));
        assert!(text.contains(&format!("rgi_request_duration_seconds_count{{{labels}}} 4\n")));
        assert!(text.contains("# TYPE rgi_request_duration_seconds histogram\n"));
    }

    #[test]
    fn html_escapes_names_and_lists_daemons() {
        let daemon = DaemonSnapshot {
            group: "shop".into(),
            pid: 42,
            started: 100,
            requests: 7,
            connections: 3,
            restarts: 2,
            last_restart_reason: "maximum-requests".into(),
            resident_bytes: Some(3 << 19),
            cpu_seconds: None,
        };
        let page = html(&[group()], std::slice::from_ref(&daemon), 160);
        assert!(
            page.contains("<td>(embedded)</td><td>a&quot;b</td><td>4</td><td>1</td><td>2</td><td>1</td>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<td>shop</td><td>42</td><td>60</td><td>7</td><td>3</td><td>1.5</td><td>–</td><td>2</td>\
                 <td>maximum-requests</td>"
            ),
            "{page}"
        );
        let text = prometheus_text(&[], &[daemon]);
        let labels = "process_group=\"shop\",pid=\"42\",last_restart_reason=\"maximum-requests\"";
        assert!(text.contains(&format!("rgi_daemon_process_resident_memory_bytes{{{labels}}} 1572864\n")), "{text}");
        assert!(!text.contains("rgi_daemon_process_cpu_seconds_total{"), "no sample without a value:\n{text}");
        assert!(text.contains(&format!("rgi_daemon_process_requests_total{{{labels}}} 7\n")), "{text}");
    }
}
