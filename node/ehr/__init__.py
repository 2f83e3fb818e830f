"""EHR sharing on the node (paper Sec. III-B): the EHRs manager, filing records, erasure and the sharing client."""
