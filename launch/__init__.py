"""Starting the servers on this machine: ``triton`` (the embedded Triton, ``make serve``) and ``stack``
(Triton + REST + dashboard, ``make run``), sharing ``options`` (host and ports) and ``processes``
(children that stop with their launcher, one run loop)."""
