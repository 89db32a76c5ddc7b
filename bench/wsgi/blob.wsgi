# The benchmark's mod_wsgi peer: 64 KiB of 'x', as examples/blob.
BODY = b"x" * (64 * 1024)
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
