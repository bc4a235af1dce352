# Every binding here is additive (an *_iam_member), scoped to the one resource it is about, and made only when the
# trigger type or auth_mode in use needs it. Project-level grants are made only of roles that exist at no lower level.

# ---------------------------------------------------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------------------------------------------------

# The function runs as this account, not as the Compute Engine default service account (Editor on the project in
# many projects). It is what Airflow, Composer, IAP and Secret Manager see; it holds only the grants below.
resource "google_service_account" "runtime" {
  project      = var.project
  account_id   = "${local.short_name}-run"
  display_name = "dag-trigger ${var.name} (runtime)"
  description  = "Runtime identity of the Cloud Run function ${var.name} (dag-trigger): calls Airflow with auth_mode ${var.auth_mode}."
}

# Eventarc delivers events as this account (an OIDC token on each push), so that invoking the function needs a grant
# of its own instead of whatever the default service account happens to hold. No trigger, no account (http).
resource "google_service_account" "trigger" {
  count = local.is_http ? 0 : 1

  project      = var.project
  account_id   = "${local.short_name}-evt"
  display_name = "dag-trigger ${var.name} (Eventarc trigger)"
  description  = "Identity of the ${var.trigger.type} Eventarc trigger of the Cloud Run function ${var.name} (dag-trigger): may only invoke it."
}

# ---------------------------------------------------------------------------------------------------------------------
# The trigger
# ---------------------------------------------------------------------------------------------------------------------

# Lets the trigger receive Cloud Storage's direct events. roles/eventarc.eventReceiver can only be granted on a project
# (Eventarc has no lower level for it), and it gives only eventarc.events.receive* to this dedicated account. Pub/Sub
# triggers do not need it (Eventarc's documentation), so they do not get it.
resource "google_project_iam_member" "trigger_event_receiver" {
  count = var.trigger.type == "gcs" ? 1 : 0

  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger[0].member
}

# Lets the trigger invoke this function and nothing else: roles/run.invoker on this function's Cloud Run service only
# (the function checks it on every delivery, whatever ingress_settings say). Made once the service exists; an event
# arriving in the seconds before it is refused and redelivered.
resource "google_cloud_run_v2_service_iam_member" "trigger_invoker" {
  count = local.is_http ? 0 : 1

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.trigger[0].member
}

# Cloud Storage publishes a gcs trigger's events to a Pub/Sub topic that Eventarc creates (and names) in this project,
# as the project's Cloud Storage service agent. The topic does not exist before the trigger does, so the grant cannot
# be on the topic: roles/pubsub.publisher on the project is what Eventarc requires. It is the same binding for every
# gcs-triggered function in the project: grant_gcs_service_agent_publisher = false leaves it to whoever manages it.
data "google_storage_project_service_account" "gcs" {
  count = var.trigger.type == "gcs" && var.grant_gcs_service_agent_publisher ? 1 : 0

  project = var.project
}

resource "google_project_iam_member" "gcs_service_agent_publisher" {
  count = length(data.google_storage_project_service_account.gcs)

  project = var.project
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.gcs[0].member
}

# An http trigger's callers (Cloud Scheduler's service account, with an OIDC token; a person): roles/run.invoker on
# this function's Cloud Run service only. Nobody else gets through, allUsers is refused by the variable's validation.
resource "google_cloud_run_v2_service_iam_member" "http_invoker" {
  for_each = toset(local.is_http ? var.http_invokers : [])

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# ---------------------------------------------------------------------------------------------------------------------
# The runtime service account: what its auth_mode needs to reach Airflow
# ---------------------------------------------------------------------------------------------------------------------

# auth_mode composer: Composer's web server admits holders of composer.environments.get (roles/composer.user), and the
# code reads the environment through the Composer API with it when COMPOSER_ENVIRONMENT is set. Composer environments
# have no IAM policy of their own, so the environment's project is the narrowest place for it. (Inside Airflow the
# account still needs a role that may create DAG runs, Op by default: that is Airflow's RBAC, not IAM.)
resource "google_project_iam_member" "runtime_composer_user" {
  count = local.composer_project == null ? 0 : 1

  project = local.composer_project
  role    = "roles/composer.user"
  member  = google_service_account.runtime.member
}

# auth_mode iap / iap_jwt: IAP lets the account through to the one backend service in front of Airflow, no other.
resource "google_iap_web_backend_service_iam_member" "runtime_iap_accessor" {
  count = contains(["iap", "iap_jwt"], var.auth_mode) && var.iap_backend_service != null ? 1 : 0

  project             = var.iap_backend_service.project
  web_backend_service = var.iap_backend_service.name
  role                = "roles/iap.httpsResourceAccessor"
  member              = google_service_account.runtime.member
}

# auth_mode iap_jwt: the code has IAM Credentials' signJwt sign IAP's JWT for the account, which needs
# iam.serviceAccounts.signJwt on the account itself. Granted on this one account to itself, it gives nothing the
# account did not have (it can already get its own tokens from the metadata server); no predefined role is narrower.
resource "google_service_account_iam_member" "runtime_signs_jwt" {
  count = var.auth_mode == "iap_jwt" ? 1 : 0

  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.runtime.member
}

# secret_environment_variables (an Airflow password for auth_mode basic or jwt): Cloud Run reads each secret as the
# runtime service account when an instance starts, so it may access those secrets, each on its own, and no other.
resource "google_secret_manager_secret_iam_member" "runtime_secret_accessor" {
  for_each = local.secret_ids

  project   = split("/", each.value)[0]
  secret_id = split("/", each.value)[1]
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
