"""The edge role (paper Sec. III-A): serve encrypted offloading and file the results as EHRs."""
