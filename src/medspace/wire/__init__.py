"""What hub and nodes say to each other, defined once for both sides."""
