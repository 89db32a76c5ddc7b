# The benchmark's mod_wsgi peer: the environ printed as examples/environ prints it (KEY=VALUE,
# sorted, newlines in values as "\n"); the wsgi.* objects are printed with str().
def application(environ, start_response):
    lines = []
    for key in sorted(environ):
        value = environ[key]
        if not isinstance(value, str):
            value = str(value)
        lines.append("%s=%s\n" % (key, value.replace("\n", "\\n")))
    body = "".join(lines).encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
