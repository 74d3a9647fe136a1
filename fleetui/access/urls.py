from django.urls import path

from fleetui.access import views

urlpatterns = [
    path("", views.access_index, name="access-index"),
    path("nodes/<int:node_id>/", views.access_node, name="access-node"),
    path("nodes/<int:node_id>/pair/", views.pair, name="access-pair"),
    path("nodes/<int:node_id>/tokens/refresh/", views.tokens_refresh, name="access-tokens-refresh"),
    path("nodes/<int:node_id>/tokens/generate/", views.token_generate, name="access-token-generate"),
    path("nodes/<int:node_id>/tokens/<int:token_pk>/revoke/", views.token_revoke, name="access-token-revoke"),
    path("tokens/generated/<uuid:operation_id>/", views.token_generated, name="access-token-generated"),
]
