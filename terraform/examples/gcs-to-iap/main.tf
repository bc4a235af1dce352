locals {
  # The single-DAG settings the code reads from the environment (shared/config.py); null ones are left out.
  airflow_environment = {
    AIRFLOW_URL    = var.airflow_url
    AIRFLOW_AUTH   = var.auth_mode
    DAG_ID         = var.dag_id
    TRIGGER_PREFIX = var.prefix
    IAP_CLIENT_ID  = var.auth_mode == "iap" ? var.iap_client_id : null
  }
  environment = { for k, v in local.airflow_environment : k => v if v != null }

  # The APIs the function uses; iamcredentials signs iap_jwt's JWTs.
  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "eventarc.googleapis.com",
    "iamcredentials.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
  ]
}

# Left enabled on destroy: other things in the project may use them.
resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# New objects in the landing bucket -> one run of the DAG each, on an Airflow behind IAP, as the function's own service
# account: IAP lets it through to this one backend service (roles/iap.httpsResourceAccessor), and with iap_jwt it
# signs its own JWT (roles/iam.serviceAccountTokenCreator on itself). No password anywhere.
module "gcs_trigger" {
  source = "../../modules/gcp-function"

  project = var.project
  region  = var.region
  name    = var.name

  trigger = {
    type   = "gcs"
    bucket = var.bucket
  }
  trigger_region = var.bucket_location

  auth_mode             = var.auth_mode
  environment_variables = local.environment

  iap_backend_service = {
    project = coalesce(var.iap_backend_service_project, var.project)
    name    = var.iap_backend_service
  }

  depends_on = [google_project_service.apis]
}
