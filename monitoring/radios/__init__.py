"""Monitoring radios with Parsl's names: ways to carry ``(MessageType, dict)`` monitoring
messages from where they are made to a queue on the submit side.

* ``UDPRadio`` (``udp``): UDP datagrams, each signed with an HMAC of a per-run key;
* ``ZMQRadio`` (``zmq``, receiver in ``zmq_router``): a zmq connection, bound to loopback by
  default, authenticated with CurveZMQ when given ``cert_dir``;
* ``FilesystemRadio`` (``filesystem``): files in a private directory of the run;
* ``MultiprocessingQueueRadio`` (``multiprocessing``): the receiver's queue itself, for child
  processes on the same machine;
* ``HTEXRadio`` (``htex``): a HighThroughputExecutor worker's result channel.

``base`` defines the life cycle all of them follow.

What our executors do instead: parsl_repro's executors never need a radio. The kernel and the
executors emit provenance events (``parsl_repro.events``) straight into the run's event stream;
HighThroughputExecutor workers send each try's placement and resource samples back with the
task's result, on the executor's own authenticated channel. An executor given
``remote_monitoring_radio=...`` accepts and keeps it (so Parsl configurations load) but starts
no receiver. The radios work on their own, for code that sends monitoring messages itself:
``bridge.RadioBridge`` turns the messages a receiver delivers into events of a run's store.

No receiver unpickles what an unauthenticated peer sent: the UDP receiver checks each
datagram's HMAC first; the zmq receiver without CurveZMQ decodes a restricted data format
(``codec``) instead of pickle; the filesystem receiver reads only files its own user made in a
directory only that user can enter.
"""
from __future__ import annotations

from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

__all__ = ["MonitoringRadioReceiver", "MonitoringRadioSender", "RadioConfig"]
