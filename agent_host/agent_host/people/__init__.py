"""People at the host's edge: who a request is from, and whom the proxy calls made for it count against."""
