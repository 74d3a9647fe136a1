from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from fleetui.core.security import ThrottledLoginView
from fleetui.core.views import fleet_overview

urlpatterns = [
    path("", fleet_overview, name="fleet-overview"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("nodes/", include("fleetui.nodes.urls")),
    path("vms/", include("fleetui.vms.urls")),
    path("", include("fleetui.images.urls")),
    path("", include("fleetui.activity.urls")),
    path("", include("fleetui.fleet.urls")),
    path("access/", include("fleetui.access.urls")),
    path("", include("fleetui.provisioning.urls")),
    path("", include("fleetui.console.urls")),
    path("", include("fleetui.catalog.urls")),
    path("", include("fleetui.batches.urls")),
    path("", include("fleetui.alerts.urls")),
    path("", include("fleetui.search.urls")),
    path("", include("fleetui.metrics.urls")),
    path("admin/", admin.site.urls),
]
