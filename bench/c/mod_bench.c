/*
 * The benchmark's C peer: the same responses as the mod_rgi examples, written as a plain C
 * content handler would write them. Built with `apxs -c` when the benchmark runs.
 *
 *   SetHandler bench-hello    13 bytes, text/plain                        (examples/hello)
 *   SetHandler bench-environ  the CGI environ, KEY=VALUE sorted by key    (examples/environ)
 *   SetHandler bench-blob     64 KiB of 'x'                                (examples/blob)
 *   SetHandler bench-echo     the request body streamed back               (examples/echo)
 *
 * bench-environ builds its environ the way a C module does (ap_add_common_vars and
 * ap_add_cgi_vars into subprocess_env, as mod_wsgi and mod_cgi do) and prints it like
 * examples/environ: sorted, newlines in values written as "\n".
 */

#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "util_script.h"
#include "apr_strings.h"
#include "apr_tables.h"

#define BLOB_SIZE (64 * 1024)
#define ECHO_BUFFER (64 * 1024)

static char blob[BLOB_SIZE];

static int hello(request_rec *r)
{
    static const char body[] = "Hello, World!";
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, sizeof body - 1);
    if (!r->header_only)
        ap_rwrite(body, sizeof body - 1, r);
    return OK;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const apr_table_entry_t *)a)->key, ((const apr_table_entry_t *)b)->key);
}

static int print_environ(request_rec *r)
{
    const apr_array_header_t *env;
    apr_table_entry_t *entries;
    apr_size_t size = 0, at = 0;
    char *body;
    int i;

    ap_add_common_vars(r);
    ap_add_cgi_vars(r);

    env = apr_table_elts(r->subprocess_env);
    entries = apr_pmemdup(r->pool, env->elts, env->nelts * sizeof *entries);
    qsort(entries, env->nelts, sizeof *entries, by_key);

    for (i = 0; i < env->nelts; i++)
        size += strlen(entries[i].key) + 2 * strlen(entries[i].val) + 2;
    body = apr_palloc(r->pool, size);
    for (i = 0; i < env->nelts; i++) {
        const char *v;
        apr_size_t klen = strlen(entries[i].key);
        memcpy(body + at, entries[i].key, klen);
        at += klen;
        body[at++] = '=';
        for (v = entries[i].val; *v; v++) {
            if (*v == '\n') {
                body[at++] = '\\';
                body[at++] = 'n';
            }
            else {
                body[at++] = *v;
            }
        }
        body[at++] = '\n';
    }

    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, at);
    if (!r->header_only)
        ap_rwrite(body, at, r);
    return OK;
}

static int send_blob(request_rec *r)
{
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, BLOB_SIZE);
    if (!r->header_only)
        ap_rwrite(blob, BLOB_SIZE, r);
    return OK;
}

static int echo(request_rec *r)
{
    const char *type = apr_table_get(r->headers_in, "Content-Type");
    const char *length = apr_table_get(r->headers_in, "Content-Length");
    char *buf;
    long n;
    int rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);

    if (rv != OK)
        return rv;
    ap_set_content_type(r, type ? type : "application/octet-stream");
    if (length)
        apr_table_setn(r->headers_out, "Content-Length", length);
    if (!ap_should_client_block(r))
        return OK;
    buf = apr_palloc(r->pool, ECHO_BUFFER);
    while ((n = ap_get_client_block(r, buf, ECHO_BUFFER)) > 0) {
        if (ap_rwrite(buf, n, r) < 0)
            return OK;
    }
    return n < 0 ? HTTP_BAD_REQUEST : OK;
}

static int handler(request_rec *r)
{
    if (!r->handler || strncmp(r->handler, "bench-", 6) != 0)
        return DECLINED;
    if (!strcmp(r->handler, "bench-hello"))
        return hello(r);
    if (!strcmp(r->handler, "bench-environ"))
        return print_environ(r);
    if (!strcmp(r->handler, "bench-blob"))
        return send_blob(r);
    if (!strcmp(r->handler, "bench-echo"))
        return echo(r);
    return DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    memset(blob, 'x', sizeof blob);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA bench_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks
};
