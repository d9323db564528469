"""Beyond one machine: the embarrassingly parallel crypto work (dataset encryption, batch private
inference) on a Dask cluster, with chunked resumable output and a model projecting it to more cores."""
