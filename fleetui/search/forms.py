from __future__ import annotations

from django import forms

from fleetui.search.selectors import MAX_QUERY_LENGTH, clean_query


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=10 * MAX_QUERY_LENGTH, strip=True)
    # Set by the header box's Enter key: go straight to the best match.
    jump = forms.BooleanField(required=False)

    def clean_q(self) -> str:
        return clean_query(self.cleaned_data.get("q"))
