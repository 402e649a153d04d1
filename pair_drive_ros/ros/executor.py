# Copyright 2026 pair_drive_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Process-level settings of the node entry points (one place, so every launcher does the same)."""

import gc
import sys
import time


def freeze_startup_heap() -> None:
    """
    Exempt every object alive after start-up from the garbage collector.

    Call once the nodes are built (models loaded, warm-up done). Imported modules, torch and
    the models are ~270,000 objects that never become garbage; each full (oldest-generation)
    collection walked all of them while holding the GIL and paused every callback by 60-120 ms
    (measured with the PaIR planner), a few times a minute. Objects created later are collected
    as usual.
    """
    gc.collect()
    gc.freeze()


# Threads of the executor that spins several nodes in one process.
GRAPH_THREADS = 4


def make_executor(kind: str = 'single', context=None):
    """
    Return the executor of a process: 'single' (one node) or 'multi' (several nodes).

    The one executor policy of the package. A node process spins single-threaded: its
    callbacks run one at a time anyway (the planner's inference keeps its inputs waiting in
    their DDS queues), and the multi-threaded executor's Python wait loop runs beside the
    callbacks and competes with them for the GIL. Several nodes in one process (`pair-drive
    run`, `demo`) share a MultiThreadedExecutor of GRAPH_THREADS threads, so that the planner's
    inference (its own callback group) does not hold up the other nodes' callbacks.
    (rclpy's experimental EventsExecutor has no guard conditions, which the planner uses, and
    its spin() did not hand the GIL back in a quick trial here.)
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    if kind == 'multi':
        return MultiThreadedExecutor(num_threads=GRAPH_THREADS, context=context)
    raise ValueError(f"executor kind must be 'single' or 'multi', got {kind!r}")


# Errors a user causes (a bad parameter, file or checkpoint): one line, no traceback. Every
# error class of the package derives from ValueError.
USER_ERRORS = (ValueError, OSError, ImportError)


class SpinErrors:
    """Count and log (throttled) the callback errors a resilient spin loop survived."""

    def __init__(self, logger=None, throttle_s: float = 2.0) -> None:
        self.count = 0
        self.logger = logger
        self.throttle_s = throttle_s
        self._last = -1e9

    def __call__(self, err: BaseException) -> None:
        """Record one error raised out of a callback."""
        self.count += 1
        now = time.monotonic()
        if now - self._last >= self.throttle_s:
            self._last = now
            text = (f'a callback raised {type(err).__name__}: {err} (input dropped, still '
                    f'running; {self.count} so far)')
            if self.logger is not None:
                self.logger.error(text)
            else:
                print(text, file=sys.stderr, flush=True)


def spin_once_resilient(executor, timeout_sec: float, on_error) -> None:
    """
    Spin once; an exception a callback raises goes to `on_error` instead of ending the spin.

    The nodes guard their own callbacks; this catches what runs outside them (rclpy's /clock
    subscription raises on a negative time, for instance), so that no single message ends
    every node of the process. Ctrl-C and shutdown still end it.
    """
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin_once(timeout_sec=timeout_sec)
    except (KeyboardInterrupt, ExternalShutdownException):
        raise
    except Exception as err:  # noqa: B902  one callback's error must not end the process
        on_error(err)


def spin_node_process(node_factory, args=None, *, until=None, period_s: float = 0.5) -> None:
    """
    Run one node in this process: init, build, freeze the heap, spin single-threaded, clean up.

    The body of a node's console-script `main()` (as in ros2/examples): Ctrl-C and an external
    shutdown end the spin with one line (exit 130 on Ctrl-C); a callback error is logged and
    survived; a bad parameter, file or checkpoint at start-up ends the process with one line
    (exit 1); the node is destroyed and rclpy shut down either way. until(node): stop spinning
    when it returns true (e.g. a simulator whose episodes are done); period_s: spin timeout.
    """
    import rclpy
    from rclpy.exceptions import NameValidationException, ParameterException
    from rclpy.executors import ExternalShutdownException

    # A parameter outside its declared range or type, or a bad name, is the user's error too.
    user_errors = USER_ERRORS + (ParameterException, NameValidationException)
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = node_factory()
        executor = make_executor('single')
        executor.add_node(node)
        freeze_startup_heap()
        errors = SpinErrors(node.get_logger())
        while rclpy.ok() and not (until is not None and until(node)):
            spin_once_resilient(executor, period_s, errors)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr, flush=True)
        code = 130
    except ExternalShutdownException:
        pass
    except user_errors as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        raise SystemExit(code)
