"""moto's server, one request at a time.

moto checks a conditional write's condition and then makes the write without
a lock, so under its default threaded server two concurrent writers can both
pass (measured here: 2 races in 200). DynamoDB makes them atomic. Serving
requests one by one restores that, which the tests of overlapping sweeps and
concurrent webhook deliveries rely on. Same arguments as `moto_server`.
"""

import moto.server as server
from werkzeug.serving import run_simple


def serial(*args, **kwargs):
    kwargs["threaded"] = False
    return run_simple(*args, **kwargs)


server.run_simple = serial
server.main()
