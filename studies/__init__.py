"""This repository's own studies, one folder each: ``claims`` (why gates work, on generated data),
``music`` (Chung et al. 2014, Table 2) and ``sst`` (sentiment). The rnnlab package never imports them; a
fork deletes a folder (and the docs it writes) and keeps a package that installs and passes its tests."""
