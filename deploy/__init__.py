"""Scripts for real local services, shipped with the package so `inferloop dev` works
from an installed wheel as well as from a source checkout (`deploy/services.sh`)."""
