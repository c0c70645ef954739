"""The API's JSON parser: DRF's, refusing a NUL character anywhere in the document (mlops_site.common.nul_guard)."""

from rest_framework import exceptions, parsers

from mlops_site.common.nul_guard import MESSAGE, nul_location


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = nul_location(data)
        if where is not None:
            field = where.split(".", 1)[0].split("[", 1)[0]
            raise exceptions.ValidationError({field: [f"{where}: {MESSAGE}"]})
        return data
