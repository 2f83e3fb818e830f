"""Offloading (paper Sec. III-A): profile health-analysis tasks, decide per task whether to run it on the device
or on an edge node, and run offloaded tasks under NaCl Box encryption.

Pure cores: tasks.py, hrv.py, tremor.py (analyses), costmodel.py, heuristics.py, deciders.py, pso.py
(decisions), sealed_messages.py, edge.py, client.py, context.py (encrypted messages), fhir.py (results as FHIR R4
records). Device orchestration: predict.py, session.py. Measuring shell: profiler.py, store.py, workload.py,
experiment.py. Nothing heavy is imported here, so `import offload.cli` stays cheap.
"""
