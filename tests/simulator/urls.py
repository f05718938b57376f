"""The site's URLs with the simulated Daraja mounted: the urlconf of the simulator fixture.

The test settings keep DEBUG off, as a deployment does, and mpesa_site.urls then leaves the
simulator out. The live-server tests need it, so they use this urlconf instead of turning DEBUG
on (which would change error pages and logging for everything else the tests check).
"""

from mpesa_site.urls import simulator_urlpatterns
from mpesa_site.urls import urlpatterns as site_urlpatterns

urlpatterns = [*site_urlpatterns, *simulator_urlpatterns]
