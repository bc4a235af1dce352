output "function_name" {
  description = "The function's name (also its Cloud Run service's)."
  value       = google_cloudfunctions2_function.this.name
}

output "function_id" {
  description = "The function's ID, projects/PROJECT/locations/REGION/functions/NAME."
  value       = google_cloudfunctions2_function.this.id
}

output "function_uri" {
  description = "The function's Cloud Run URI (https://...run.app): the URL and OIDC audience for an http trigger's callers."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "cloud_run_service" {
  description = "The function's Cloud Run service, projects/PROJECT/locations/REGION/services/NAME (where roles/run.invoker is granted)."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "entry_point" {
  description = "The entry point deployed: trigger_dag (event triggers) or trigger_http."
  value       = local.entry_point
}

output "runtime_service_account_email" {
  description = "The function's runtime service account: the identity Airflow, Composer, IAP and Secret Manager see."
  value       = google_service_account.runtime.email
}

output "runtime_service_account_unique_id" {
  description = "The runtime service account's numeric unique ID: the sub (and azp) of its Google-signed ID tokens, which an AWS role trusting accounts.google.com checks as accounts.google.com:sub and accounts.google.com:aud (terraform/modules/aws-role-for-gcp)."
  value       = google_service_account.runtime.unique_id
}

output "trigger_service_account_email" {
  description = "The Eventarc trigger's service account (null for an http trigger)."
  value       = one(google_service_account.trigger[*].email)
}

output "source_bucket" {
  description = "The bucket holding the source zip (created by the module unless source_bucket was given)."
  value       = local.source_bucket
}

output "source_object" {
  description = "The source zip deployed, NAME/MD5.zip in source_bucket."
  value       = google_storage_bucket_object.source.name
}
