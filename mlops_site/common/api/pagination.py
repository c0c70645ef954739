from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

PAGE_NUMBER_INVALID = "A whole number of 1 or more."


class DefaultPagination(PageNumberPagination):
    """{"count", "next", "previous", "results"}; clients may ask for up to 500 a page, never more.

    `page` or `page_size` that is not a whole number of 1 or more is a 400 `validation_error` naming
    it (DRF answers 404 "Invalid page." for `page=0`, and ignores `page_size=-5` while echoing it in
    `next`); a page past the last is still DRF's 404.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        bad = {name: [PAGE_NUMBER_INVALID] for name in (self.page_query_param, self.page_size_query_param)
               if not _whole_number_or_absent(request.query_params.get(name), last=name == self.page_query_param)}
        if bad:
            raise ValidationError(bad)
        return super().paginate_queryset(queryset, request, view=view)


def _whole_number_or_absent(raw: str | None, *, last: bool) -> bool:
    if raw is None or (last and raw == "last"):  # DRF's page=last
        return True
    return raw.isascii() and raw.isdigit() and int(raw) >= 1
