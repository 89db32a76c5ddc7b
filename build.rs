//! Generates raw bindings to the Apache httpd 2.4 and APR headers.
//!
//! Include directories come from `apxs -q INCLUDEDIR` and `apr-1-config`/`apu-1-config`, or from
//! `RGI_APACHE_INCLUDE` / `RGI_APR_CFLAGS` for other layouts. Only the names the module uses are
//! bound (the allowlist below), which keeps the bindings small and the build fast.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi/wrapper.h");
    println!("cargo:rerun-if-env-changed=RGI_APACHE_INCLUDE");
    println!("cargo:rerun-if-env-changed=RGI_APR_CFLAGS");

    let apache_include =
        env::var("RGI_APACHE_INCLUDE").ok().or_else(|| query("apxs", &["-q", "INCLUDEDIR"])).unwrap_or_else(|| {
            panic!(
                "cannot find the Apache headers: install apache2-dev (apt-get install apache2-dev) \
                 or set RGI_APACHE_INCLUDE to the directory holding httpd.h"
            )
        });
    let apr_flags = env::var("RGI_APR_CFLAGS").ok().unwrap_or_else(|| {
        let apr = query("apr-1-config", &["--includes", "--cppflags"])
            .expect("apr-1-config not found: install libapr1-dev or set RGI_APR_CFLAGS");
        let apu = query("apu-1-config", &["--includes"]).unwrap_or_default();
        format!("{apr} {apu}")
    });

    let mut builder = bindgen::Builder::default()
        .header("src/ffi/wrapper.h")
        .clang_arg(format!("-I{apache_include}"))
        .clang_args(apr_flags.split_whitespace())
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for function in ["ap_.*", "apr_.*", "unixd_.*"] {
        builder = builder.allowlist_function(function);
    }
    for ty in [
        "request_rec",
        "conn_rec",
        "server_rec",
        "module",
        "command_rec",
        "cmd_parms",
        "ap_filter_t",
        "apr_bucket.*",
        "authn_provider",
        "authz_provider",
        "authn_status",
        "authz_status",
        "core_dir_config",
        "ap_regex_t",
        "ap_regmatch_t",
        "ap_socache_.*",
        "unixd_config_rec",
        "apr_proc_t",
        "apr_finfo_t",
        "apr_table_entry_t",
        "apr_array_header_t",
        "apr_sockaddr_t",
        "process_rec",
    ] {
        builder = builder.allowlist_type(ty);
    }
    for var in [
        "ap_.*",
        "apr_bucket_type_.*",
        "ap_unixd_config",
        "ap_server_conf",
        "ap_my_generation",
        "AP_.*",
        "APR_.*",
        "APLOG_.*",
        "HTTP_.*",
        "OK",
        "DECLINED",
        "DONE",
        "M_.*",
        "RSRC_CONF",
        "ACCESS_CONF",
        "OR_.*",
        "MODULE_MAGIC_.*",
        "REQUEST_CHUNKED_.*",
        "AUTHN_.*",
        "AUTHZ_.*",
        "PROXYREQ_.*",
        "NOT_IN_.*",
        "GLOBAL_ONLY",
        "RAW_ARGS",
        "TAKE.*",
        "FLAG",
        "ITERATE.*",
        "REMOTE_(HOST|NAME|NOLOOKUP|DOUBLE_REV)",
    ] {
        builder = builder.allowlist_var(var);
    }
    let bindings = builder.generate().expect("bindgen could not parse the Apache headers (is libclang-dev installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("apache_bindings.rs");
    bindings.write_to_file(out).expect("write bindings");

    // Apache unloads and reloads modules on every configuration cycle. Pinning the module makes
    // its statics (the daemon supervisor, the logging hook) outlive a reload deterministically.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
